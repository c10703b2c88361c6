package vm

import (
	"fmt"

	"go.uber.org/zap"
)

// NewHypervisor returns the QEMU backend. A nil log means quiet.
func NewHypervisor(log *zap.Logger) (Hypervisor, error) {
	return nil, fmt.Errorf("qemu backend: landing shortly: %w", ErrNotSupported)
}
