package vm

import (
	"os"

	"go.uber.org/zap"
)

// NewHypervisor returns the QEMU backend. $SKIFF_QEMU_ACCEL=kvm|tcg skips
// the KVM probe. A nil log means quiet.
func NewHypervisor(log *zap.Logger) (Hypervisor, error) {
	return NewQEMU(QEMUOptions{Log: log, Accel: os.Getenv("SKIFF_QEMU_ACCEL")})
}
