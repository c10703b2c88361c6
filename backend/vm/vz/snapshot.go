package vz

import (
	"crypto/sha256"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/backend/vm/snapcache"
)

// Boot snapshots under vz (docs/contracts.md, "Boot snapshots"): the
// cache, keys and fallbacks are QEMU's (backend/vm/snapcache), the saving
// and restoring Virtualization.framework's SaveMachineStateToPath and
// RestoreMachineStateFromURL (macOS 14 and later, Apple silicon only).
// The framework restores a VM only into one built from the same
// configuration, and vz cannot hot-plug a device afterwards: a snapshot
// is of one whole configuration (CPUs, memory, kernel, command line, MAC,
// every share and every disk, by path), so that a VM restores only when it
// is the same machine again (a container restarted), never a new
// container's of the same shape as under QEMU. A configuration is
// snapshotted the second time it starts in this process, not the first:
// building a template costs a cold boot and a save, which a configuration
// started once (`run --rm`) would never win back. This file is the
// platform-neutral part; snapshot_darwin_arm64.go does the rest.

// snapshotVersion changes whenever the vz template/restore protocol does.
const snapshotVersion = 1

// minSnapshotMacOS is the first macOS with save and restore.
const minSnapshotMacOS = 14

// snapshotsSupported says why this host cannot save and restore VMs, or
// nil when it can: productVersion is the host's macOS version
// (kern.osproductversion, "14.4.1"), goarch the binary's.
func snapshotsSupported(productVersion, goarch string) error {
	if goarch != "arm64" {
		return fmt.Errorf("vz saves VMs on Apple silicon only, not %s: %w", goarch, vm.ErrNotSupported)
	}
	major, _, _ := strings.Cut(strings.TrimSpace(productVersion), ".")
	n, err := strconv.Atoi(major)
	if err != nil {
		return fmt.Errorf("macOS version %q: %w", productVersion, vm.ErrNotSupported)
	}
	if n < minSnapshotMacOS {
		return fmt.Errorf("macOS %s saves no VMs (macOS %d and later do): %w", productVersion, minSnapshotMacOS, vm.ErrNotSupported)
	}
	return nil
}

// snapshotKey names spec's whole configuration (see above) on this host:
// osBuild is the host's macOS version and build, as a file saved on one
// may not restore after a software update.
func snapshotKey(spec vm.MachineSpec, osBuild string) (string, error) {
	k := snapcache.NewHash()
	k.Line("vz v%d %s %s %d %d", snapshotVersion, osBuild, spec.Arch, spec.CPUs, spec.MemoryMiB)
	for _, p := range []string{spec.Kernel, spec.Initramfs} {
		if err := k.File(p); err != nil {
			return "", err
		}
	}
	k.Line("%s", strings.Join(vzBaseArgs, " "))
	for _, c := range spec.Cmdline {
		k.Line("arg %s", c)
	}
	k.Line("channel vsock:%d", vm.DefaultVsockPort)
	k.Line("network %q %s", spec.Network.Mode, spec.Network.MAC)
	for _, sh := range spec.Shares {
		k.Line("share %q %q %v", sh.Tag, sh.HostPath, sh.ReadOnly)
	}
	for _, d := range spec.Disks {
		// Its size: the guest's virtio-blk driver read it in the template.
		st, err := os.Stat(d.Path)
		if err != nil {
			return "", err
		}
		k.Line("disk %q %q %v %d", d.ID, d.Path, d.ReadOnly, st.Size())
	}
	return k.Key(spec.Arch), nil
}

// templateMAC is the MAC of a snapshotted configuration that names none:
// the framework picks a random one for each VM, and a restore needs its
// template's. Locally administered, derived from the key.
func templateMAC(key string) string {
	h := sha256.Sum256([]byte(key))
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", h[0], h[1], h[2])
}

// templateSpec is the template VM of spec's snapshot: spec's own devices,
// its own state and console log under dir, booting as a template (the
// agent waits for the restore line), on no container network.
func templateSpec(spec vm.MachineSpec, key, dir string) vm.MachineSpec {
	t := spec
	t.ID = "snapshot-" + key
	t.StateDir = dir + "/run"
	t.ConsoleLog = dir + "/console.log"
	t.Boot = agentproto.Boot{Template: true}
	t.Network.Fabric, t.Network.Member = nil, ""
	return t
}

// restoreLine is a restored VM's own keys (its clock, entropy, hostname,
// root, …) over its template's, read by the agent (agentproto.ParseBootOnto).
func restoreLine(spec vm.MachineSpec, now time.Time) string {
	b := vm.GuestBoot(spec, agentproto.NetConfig{}, now)
	return strings.Join(b.Args(), " ")
}

// seenKeys are the configurations started in this process.
type seenKeys struct {
	mu   sync.Mutex // guards keys
	keys map[string]bool
}

// add records key and reports whether it was there already.
func (s *seenKeys) add(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys == nil {
		s.keys = map[string]bool{}
	}
	again := s.keys[key]
	s.keys[key] = true
	return again
}
