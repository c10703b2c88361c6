//go:build !linux

package daemon

import (
	"fmt"

	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/vm"
)

func newHostproc(*zap.Logger) (vm.Hypervisor, error) {
	return nil, fmt.Errorf("SKIFF_HYPERVISOR=hostproc: %w", vm.ErrNotSupported)
}
