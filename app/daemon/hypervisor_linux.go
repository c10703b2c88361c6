package daemon

import (
	"os"

	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/backend/vm/qemu"
)

// platformHypervisor returns the QEMU backend. $SKIFF_QEMU_ACCEL=kvm|tcg skips
// the KVM probe. A nil log means quiet.
func platformHypervisor(log *zap.Logger) (vm.Hypervisor, error) {
	return qemu.New(qemu.Options{Log: log, Accel: os.Getenv("SKIFF_QEMU_ACCEL")})
}
