//go:build darwin && amd64

package vz

import (
	"context"

	"github.com/skiff-containers/skiff/backend/vm"
)

// startFast boots spec cold: on an Intel Mac Virtualization.framework saves
// no VM (SaveMachineStateToPath exists on Apple silicon only).
func (h *vzHypervisor) startFast(ctx context.Context, spec vm.MachineSpec) (*vzMachine, error) {
	return h.boot(ctx, spec)
}
