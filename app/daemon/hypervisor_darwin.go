//go:build darwin

package daemon

import (
	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/backend/vm/vz"
)

// platformHypervisor returns the Virtualization.framework backend (vz). A nil log
// means quiet.
func platformHypervisor(log *zap.Logger) (vm.Hypervisor, error) {
	return vz.New(log)
}
