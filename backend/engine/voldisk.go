package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
)

// Disk volumes. A volume is by default a sparse ext4 image (volumeDiskFile) that the VM of each
// container mounting it gets as a virtio block device (ID volumeDiskID(i), i the mount's index) and
// the guest agent mounts (agentproto.MountSpec.Disk): the container owns its files for real (chown,
// modes, xattrs) as on Docker's own disk. A block device's file system can be written by one kernel
// only, so a disk volume is mounted by one running container at a time, or read-only by several
// while none writes it (mounted with noload: no journal replay); the engine refuses anything else
// at start (claimVolumes). Shared-folder volumes (--opt shared=true, and every volume made before
// disk volumes) are directories shared over virtiofs, which any number of VMs may mount.
const (
	volumeDiskFile = "volume.ext4"
	// DefaultVolumeSize is a disk volume's size unless --opt size= says otherwise: like a container's
	// writable disk, a sparse file that takes on the host only what is written.
	DefaultVolumeSize = DefaultStorageSize
	// VolumeOptSize and VolumeOptShared are the volume options the local driver takes.
	VolumeOptSize   = "size"
	VolumeOptShared = "shared"
)

func (e *Engine) volumeDisk(name string) string {
	return filepath.Join(e.volumeDir(name), volumeDiskFile)
}

// volumeContent is where a volume's content is on the host: its disk image, or its directory.
func (e *Engine) volumeContent(name string, shared bool) string {
	if shared {
		return e.volumeData(name)
	}
	return e.volumeDisk(name)
}

// volumeDiskID is the block device ID of the disk of mount i's volume: one disk per volume, named
// after the container's first mount of it (a volume mounted at two targets is one disk, bound twice).
func volumeDiskID(mounts []Mount, i int) string {
	for j := 0; j < i; j++ {
		if mounts[j].Disk && mounts[j].Name == mounts[i].Name {
			i = j
			break
		}
	}
	return "skiff-vol" + strconv.Itoa(i)
}

// volumeDisks are the disks of the disk volumes of mounts, each attached writable when one of its
// mounts wants it so (diskWritable).
func (e *Engine) volumeDisks(mounts []Mount) []vm.Disk {
	var out []vm.Disk
	at := map[string]int{} // volume → its disk in out
	for i, m := range mounts {
		if !m.Disk {
			continue
		}
		k, ok := at[m.Name]
		if !ok { // the volume's first mount
			k = len(out)
			at[m.Name] = k
			out = append(out, vm.Disk{ID: volumeDiskID(mounts, i), Path: m.Source, ReadOnly: true})
		}
		if e.diskWritable(m) {
			out[k].ReadOnly = false
		}
	}
	return out
}

// parseVolumeOptions checks the driver options of a new volume: size=<size> (a disk volume's size,
// 64M to 4T) and shared=true|false. It returns the options as recorded (a disk volume's with its
// size, given or default).
func parseVolumeOptions(opts map[string]string) (shared bool, size int64, out map[string]string, err error) {
	out = map[string]string{}
	var sizeOpt string
	for k, v := range opts {
		switch strings.TrimSpace(k) {
		case VolumeOptShared:
			b, perr := strconv.ParseBool(strings.TrimSpace(v))
			if perr != nil {
				return false, 0, nil, parseErr("volume option shared", v, "want true or false")
			}
			shared = b
		case VolumeOptSize:
			n, perr := ParseStorageSize(v)
			if perr != nil {
				return false, 0, nil, fmt.Errorf("volume option size: %w", perr)
			}
			size, sizeOpt = n, strings.TrimSpace(v)
		default:
			return false, 0, nil, fmt.Errorf("volume option %q: the local driver here takes only size=<size> (a disk volume's size) "+
				"and shared=true (a shared-folder volume): %w", k, ErrNotSupported)
		}
	}
	if shared {
		if sizeOpt != "" {
			return false, 0, nil, parseErr("volume options", "shared=true,size="+sizeOpt,
				"a shared-folder volume is a directory and has no size (leave size out, or shared)")
		}
		out[VolumeOptShared] = "true"
		return true, 0, out, nil
	}
	if size == 0 {
		size, sizeOpt = DefaultVolumeSize, strconv.FormatInt(DefaultVolumeSize>>30, 10)+"G"
	}
	out[VolumeOptSize] = sizeOpt
	return false, size, out, nil
}

// fileBlocks is what a (sparse) file takes on the host.
func fileBlocks(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return min(fi.Size(), st.Blocks*512)
	}
	return fi.Size()
}

// volClaim is a running VM's hold on a disk volume (Engine.volClaims, under e.vmu).
type volClaim struct {
	name string // the container's, for messages
	rw   bool
}

// volumeUsedFile marks a disk volume that a VM has had writable: its data directory exists, and
// a read-only user needs not fill it.
const volumeUsedFile = "written"

// diskWritable says whether disk volume mount m is attached writable: when the container writes
// it, or reads a volume no VM has written yet, which the agent fills from the image (Docker fills
// a new volume mounted read-only too) before it binds it read-only.
func (e *Engine) diskWritable(m Mount) bool {
	if !m.ReadOnly {
		return true
	}
	if !fillsVolume(m) {
		return false
	}
	_, err := os.Lstat(filepath.Join(e.volumeDir(m.Name), volumeUsedFile))
	return err != nil
}

// claimWait bounds how long a start waits for the VM of a container that has ended (its VM being
// powered off: teardown) to give up a disk volume it wants.
const claimWait = shutdownTimeout + 5*time.Second

// claimVolumes records that container c's VM is about to attach its disk volumes (mounts, as
// disks of its machine spec say: writable or not), refusing with ErrConflict a volume another
// running VM writes, or one c would write that another VM has (docs/contracts.md, "Volumes"). A
// holder whose workload has ended is waited for (up to claimWait) while its VM powers off.
// release gives them up once the VM has ended.
func (c *ctr) claimVolumes(ctx context.Context, id, name string, mounts []Mount, disks []vm.Disk) (release func(), err error) {
	e := c.e
	rw := map[string]bool{} // volume → attached writable
	for i, m := range mounts {
		if m.Type != MountVolume || !m.Disk {
			continue
		}
		for _, d := range disks {
			if d.ID == volumeDiskID(mounts, i) && !d.ReadOnly {
				rw[m.Name] = true
			}
		}
	}
	deadline := time.Now().Add(claimWait)
	for {
		e.vmu.Lock()
		ending, conflict := e.volConflictLocked(id, mounts, rw)
		if conflict == nil {
			release = e.volClaimLocked(id, name, mounts, rw)
			e.vmu.Unlock()
			return release, nil
		}
		if e.volFreed == nil {
			e.volFreed = make(chan struct{})
		}
		freed := e.volFreed
		e.vmu.Unlock()
		left := time.Until(deadline)
		if !ending || left <= 0 {
			return nil, conflict
		}
		t := time.NewTimer(left)
		select {
		case <-freed:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
		t.Stop()
	}
}

// volConflictLocked says whether every conflicting holder's workload has ended (its VM is powering
// off), and returns the refusal of claimVolumes' claim now (nil: none). e.vmu is held.
func (e *Engine) volConflictLocked(id string, mounts []Mount, rw map[string]bool) (bool, error) {
	for _, m := range mounts {
		if m.Type != MountVolume || !m.Disk {
			continue
		}
		var others []string
		ending := true
		for oid, cl := range e.volClaims[m.Name] {
			if oid != id && (cl.rw || rw[m.Name]) {
				others = append(others, cl.name)
				if e.workloadLive(oid) {
					ending = false
				}
			}
		}
		if len(others) > 0 {
			sort.Strings(others)
			holders := strings.Join(others, ", ")
			return ending, fmt.Errorf("volume %q is a disk volume in use by running container %s: a disk volume is mounted by "+
				"one running container at a time (or read-only by several while none writes it); stop %s first, or to share "+
				"data between running containers use a shared-folder volume (docker volume create --opt shared=true NAME; "+
				"its files keep no owners: every file is root's in the container and chown fails): %w",
				m.Name, holders, holders, ErrConflict)
		}
	}
	return true, nil
}

// workloadLive says whether container id runs (or is paused): its VM holds its volumes for good,
// not only while it powers off.
func (e *Engine) workloadLive(id string) bool {
	e.mu.Lock()
	c := e.ctrs[id]
	e.mu.Unlock()
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rec.State == StateRunning || c.rec.State == StatePaused
}

// volClaimLocked records the claim (e.vmu held) and returns its release.
func (e *Engine) volClaimLocked(id, name string, mounts []Mount, rw map[string]bool) func() {
	var held []string
	for _, m := range mounts {
		if m.Type != MountVolume || !m.Disk {
			continue
		}
		if e.volClaims == nil {
			e.volClaims = map[string]map[string]volClaim{}
		}
		if e.volClaims[m.Name] == nil {
			e.volClaims[m.Name] = map[string]volClaim{}
		}
		e.volClaims[m.Name][id] = volClaim{name: name, rw: rw[m.Name]}
		held = append(held, m.Name)
		if rw[m.Name] {
			if err := os.WriteFile(filepath.Join(e.volumeDir(m.Name), volumeUsedFile), nil, 0o600); err != nil {
				e.log.Warn("marking a disk volume written", zapStr("volume", m.Name), zapErr(err))
			}
		}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			e.vmu.Lock()
			defer e.vmu.Unlock()
			for _, n := range held {
				delete(e.volClaims[n], id)
				if len(e.volClaims[n]) == 0 {
					delete(e.volClaims, n)
				}
			}
			if e.volFreed != nil {
				close(e.volFreed)
				e.volFreed = nil
			}
		})
	}
}

// diskMountSpec is how the agent mounts disk volume mount i at its target.
func diskMountSpec(mounts []Mount, i int) agentproto.MountSpec {
	m := mounts[i]
	return agentproto.MountSpec{Disk: volumeDiskID(mounts, i), Target: m.Target, ReadOnly: m.ReadOnly, Fill: fillsVolume(m)}
}

// mountVolumes mounts the volumes of mounts (disk and shared-folder ones) in a VM of machineSpec's,
// as a boot does: the copy VM of a stopped container (guest) mounts them so that a copy under a
// volume's target reaches the volume.
func mountVolumes(ctx context.Context, cl *agentproto.Client, mounts []Mount) error {
	for i, m := range mounts {
		if m.Type != MountVolume {
			continue
		}
		ms := agentproto.MountSpec{Tag: mountTag(i), Target: m.Target, ReadOnly: m.ReadOnly, Fill: fillsVolume(m)}
		if m.Disk {
			ms = diskMountSpec(mounts, i)
		}
		if err := cl.Mount(ctx, ms); err != nil {
			return fmt.Errorf("mounting %s at %s: %w", mountDesc(m), m.Target, err)
		}
	}
	return nil
}
