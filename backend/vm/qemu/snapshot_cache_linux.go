package qemu

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/backend/vm/snapcache"
)

// The boot snapshot cache is backend/vm/snapcache's, under <CacheDir>/snapshots: one directory
// per shape key (meta.json, the device state, the saved RAM, the template's console log).

// newSnapshotCache is the cache of QEMU's snapshots under cacheDir.
func newSnapshotCache(cacheDir string, log *zap.Logger) *snapcache.Cache {
	return snapcache.New(filepath.Join(cacheDir, "snapshots"), snapshotVersion, log)
}

// snapshotKey names spec's shape: everything that a template bakes in.
func (h *qemuHypervisor) snapshotKey(spec vm.MachineSpec, accel string) (string, error) {
	bin, err := exec.LookPath(h.bins[spec.Arch])
	if err != nil {
		return "", err
	}
	k := snapcache.NewHash()
	k.Line("v%d %s %s %d %d %s", snapshotVersion, spec.Arch, accel, spec.CPUs, spec.MemoryMiB, spec.Network.Mode)
	for _, p := range []string{bin, spec.Kernel, spec.Initramfs} {
		if err := k.File(p); err != nil {
			return "", err
		}
	}
	// The kernel arguments every backend gives and the spec's (the agent's
	// own keys are in spec.Boot): the template's drivers are set up with them.
	k.Line("%s", vm.GuestCmdline(nil, spec, agentproto.Boot{}))
	// The devices: a change to qemuArgs makes new snapshots.
	t := spec
	t.ID, t.Shares, t.Disks, t.Network.MAC = "template", nil, nil, ""
	k.Line("%s", strings.Join(qemuArgs(t, accel, layout{cmdline: "-", snapshot: true, ring: h.ringFor(spec)}), " "))
	return k.Key(spec.Arch), nil
}

// snapshotFor returns spec's snapshot, built now when there is none, with
// a shared lock held.
func (h *qemuHypervisor) snapshotFor(ctx context.Context, spec vm.MachineSpec, accel string) (*snapcache.Snapshot, error) {
	key, err := h.snapshotKey(spec, accel)
	if err != nil {
		return nil, fmt.Errorf("boot snapshot: %w", err)
	}
	return h.snaps.Get(ctx, key, func(ctx context.Context, tmp string) (string, error) {
		return h.buildSnapshot(ctx, spec, accel, key, tmp)
	})
}

// CacheUsage counts the complete boot snapshots and the disk space they
// take (allocated blocks: the RAM files are sparse).
func (h *qemuHypervisor) CacheUsage() (entries int, bytes int64) { return h.snaps.Usage() }
