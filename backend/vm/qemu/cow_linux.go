package qemu

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/backend/vm/snapcache"
)

// Copy-on-write guest RAM. A VM restored from a boot snapshot with no
// shares maps its snapshot's RAM privately (memory-backend-file,
// share=off) over one memfd that every such VM of the snapshot maps: the
// pages a guest never writes are the same host pages in all of them, and
// only what it writes is its own. The memfd is loaded once from the
// snapshot's ram file and sealed against writes, so nothing a VM does can
// change what the others read: QEMU 7.2 punches a hole in a private
// mapping's file when it discards a page (free page reporting), which
// the seal refuses (that VM keeps the page; see docs/performance.md).
//
// A VM with shares cannot: vhost-user hands virtiofsd the guest RAM's
// file, which must then be the guest's own memory (share=on). So a
// copy-on-write VM takes no new share (FreeShareSlots is 0): a folder
// dropped on its container restarts the VM (engine.MountRestart), which
// then gets RAM of its own.

// cowRAM is one snapshot's RAM in a sealed memfd and the running VMs that
// map it.
type cowRAM struct {
	key   string   // the snapshot's directory and creation time
	f     *os.File // the sealed memfd
	bytes uint64   // its allocated size
	ino   uint64
	users int // guarded by cowRAMs.mu
}

// cowRAMs are the copy-on-write RAMs of the snapshots in use. The zero
// value is ready.
type cowRAMs struct {
	mu   sync.Mutex // guards rams and each one's users
	rams map[string]*cowRAM
}

// cowOK says whether spec, restored from a snapshot, maps its RAM
// copy-on-write: when it has no shares.
func cowOK(spec vm.MachineSpec) bool { return len(spec.Shares) == 0 }

// acquire returns snap's RAM as a sealed memfd of mib MiB, loaded from its
// ram file unless a running VM holds it already; release it once the VM
// using it has ended.
func (c *cowRAMs) acquire(snap *snapcache.Snapshot, mib int) (*cowRAM, error) {
	key := snapID(snap)
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.rams[key]; r != nil {
		r.users++
		return r, nil
	}
	f, err := loadRAM(filepath.Join(snap.Dir, "ram"), mib)
	if err != nil {
		return nil, err
	}
	seals := unix.F_SEAL_WRITE | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_SEAL
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, fmt.Errorf("sealing the saved RAM: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("the saved RAM: %w", err)
	}
	r := &cowRAM{key: key, f: f, bytes: uint64(st.Blocks) * 512, ino: st.Ino, users: 1}
	if c.rams == nil {
		c.rams = map[string]*cowRAM{}
	}
	c.rams[key] = r
	return r, nil
}

// release drops one VM's hold on r; the last closes the memfd (its pages
// go once the last qemu mapping them has exited too).
func (c *cowRAMs) release(r *cowRAM) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.users--; r.users == 0 {
		delete(c.rams, r.key)
		r.f.Close()
	}
}

// share is one VM's part of r: its allocated size over the VMs mapping it.
func (c *cowRAMs) share(r *cowRAM) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return r.bytes / uint64(max(r.users, 1))
}

// restoredRAM is the guest RAM a VM restored from snap gets: for a
// copy-on-write one (cowOK) its own descriptor of the snapshot's shared
// memfd, with cow set (hand it to cowEnd); else a memfd of its own holding
// a copy of the saved RAM. The caller closes ram.
func (h *qemuHypervisor) restoredRAM(snap *snapcache.Snapshot, spec vm.MachineSpec) (ram *os.File, cow *cowRAM, err error) {
	if !cowOK(spec) {
		ram, err = loadRAM(filepath.Join(snap.Dir, "ram"), spec.MemoryMiB)
		return ram, nil, err
	}
	if cow, err = h.cow.acquire(snap, spec.MemoryMiB); err != nil {
		return nil, nil, err
	}
	fd, err := unix.FcntlInt(cow.f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		h.cow.release(cow)
		return nil, nil, fmt.Errorf("the saved RAM: %w", err)
	}
	return os.NewFile(uintptr(fd), cow.f.Name()), cow, nil
}

// cowEnd releases the copy-on-write RAM cow (nil: none) once m, which
// maps it, has ended; at once when m is nil (its start failed).
func (h *qemuHypervisor) cowEnd(m *qemuMachine, cow *cowRAM) {
	switch {
	case cow == nil:
	case m == nil:
		h.cow.release(cow)
	default:
		go func() {
			<-m.done
			h.cow.release(cow)
		}()
	}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// settleTemplate waits, before a template is saved, until its guest RAM
// (the memfd ram) has stopped changing: the guest's free page reporting
// hands QEMU its free blocks 2 s after they were freed, and a block still
// unreported at the save would be reported by every VM restored from it,
// right as it resumes — which a copy-on-write VM's QEMU refuses, and logs,
// before its agent can unload the balloon driver. At least settleMin,
// quiet for settleQuiet, at most settleMax.
func settleTemplate(ctx context.Context, ram *os.File) {
	start := time.Now()
	last, since := allocated(ram), start
	for time.Since(start) < settleMax {
		select {
		case <-ctx.Done():
			return
		case <-time.After(settleTick):
		}
		if n := allocated(ram); n != last {
			last, since = n, time.Now()
		}
		if time.Since(start) >= settleMin && time.Since(since) >= settleQuiet {
			return
		}
	}
}

const (
	settleMin   = 2500 * time.Millisecond
	settleQuiet = 1500 * time.Millisecond
	settleMax   = 15 * time.Second
	settleTick  = 250 * time.Millisecond
)

// allocated is f's allocated size in bytes (-1 when it cannot say).
func allocated(f *os.File) int64 {
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil {
		return -1
	}
	return st.Blocks * 512
}
