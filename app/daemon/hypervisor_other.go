//go:build !linux && !darwin

package daemon

import (
	"fmt"
	"runtime"

	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/vm"
)

// platformHypervisor has no backend on this OS.
func platformHypervisor(log *zap.Logger) (vm.Hypervisor, error) {
	return nil, fmt.Errorf("virtual machines on %s: %w", runtime.GOOS, vm.ErrNotSupported)
}
