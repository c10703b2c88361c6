//go:build darwin

package vm

import "go.uber.org/zap"

// NewHypervisor returns the Virtualization.framework backend (vz). A nil log
// means quiet.
func NewHypervisor(log *zap.Logger) (Hypervisor, error) {
	return NewVZ(log)
}
