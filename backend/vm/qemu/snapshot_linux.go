package qemu

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/vm"
)

// Boot snapshots. A cold boot spends ~3.5 s under TCG in the kernel's own
// initialisation and the agent's driver set-up, the same for every VM of a
// shape (arch, CPUs, memory, network, kernel, initramfs, qemu). So the first
// VM of a shape boots a template instead: the agent initialises the guest up
// to the container's own parts, says so, and waits; the host saves the
// VM's devices (a QEMU migration stream, ~300 KB) and its RAM (the memfd it
// handed qemu, saved sparse), and every VM of that shape is restored from
// them: its RAM copied into a fresh memfd, its devices loaded, its shares
// hot-plugged into PCIe root ports the template has waiting, and one line
// of its own skiff.* keys (clock, entropy, hostname, …) sent to the agent,
// which reseeds the kernel's random generator before anything runs.
// docs/contracts.md, "Boot snapshots".

// snapshotVersion changes whenever the template/restore protocol does, so
// that older snapshots are not used (the devices are in the key already).
// 3: the network is the engine's user-space one (a guest may have its
// gateway's MAC in its ARP cache).
const snapshotVersion = 3

// snapshotOK reports whether spec can start from a snapshot.
func (h *qemuHypervisor) snapshotOK(spec vm.MachineSpec) bool {
	return spec.SkiffAgent && !h.noSnapshots && len(spec.Shares)+len(spec.Disks) <= hotplugPorts
}

// Prepare builds spec's boot snapshot unless it has one, so that the
// first start of its shape is as fast as the next. See Preparer.
func (h *qemuHypervisor) Prepare(ctx context.Context, spec vm.MachineSpec) error {
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return err
	}
	if !h.snapshotOK(spec) {
		return nil
	}
	spec.Kernel = h.bootKernel(spec)
	accel, err := h.accelFor(ctx, spec)
	if err != nil {
		return err
	}
	snap, err := h.snapshotFor(ctx, spec, accel)
	if err != nil {
		return err
	}
	h.refillSpare(nil, spec, accel, snap)
	snap.Release()
	return nil
}

// startFast starts spec from its snapshot when it can, else cold. A shape
// whose snapshot cannot be built or restored boots cold for the next
// snapcache.Retry (this process), and a snapshot that did not restore is
// dropped, to be rebuilt.
func (h *qemuHypervisor) startFast(ctx context.Context, spec vm.MachineSpec, accel string) (*qemuMachine, error) {
	if !h.snapshotOK(spec) {
		return h.boot(ctx, spec, accel)
	}
	for _, sh := range spec.Shares { // the spec's own faults are not the snapshot's
		if _, err := shareSource(sh); err != nil {
			return nil, fmt.Errorf("starting %q: %w", spec.ID, err)
		}
	}
	key, err := h.snapshotKey(spec, accel)
	if err == nil && !h.snaps.Failed(key) {
		m, err := h.startRestored(ctx, spec, accel)
		if err == nil || ctx.Err() != nil || errors.Is(err, errDiskAttach) {
			return m, err
		}
		h.log.Warn("boot snapshot unusable; booting cold", zap.String("vm", spec.ID), zap.Error(err))
		h.dropSpare(key, nil)
		h.snaps.Fail(key)
	}
	return h.boot(ctx, spec, accel)
}
