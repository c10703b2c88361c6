package qemu

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/skiff-containers/skiff/backend/vm"
)

// The boot snapshot cache: one directory per shape key under <CacheDir>/snapshots (meta.json,
// the device state, the saved RAM), a lock file per key (shared while in use, exclusive while
// built), and pruning down to maxSnapshots.

// maxSnapshots is how many snapshots (~70–100 MB each) are kept; the least
// recently used go first.
const maxSnapshots = 4

// snapshotMeta is a complete snapshot's meta.json, written last.
type snapshotMeta struct {
	Version int    `json:"version"`
	Key     string `json:"key"`
	// Cmdline is the template's kernel command line; its VMs boot with the
	// same one (a restore must not change the devices' configuration).
	Cmdline string    `json:"cmdline"`
	Created time.Time `json:"created"`
}

// snapshot is a complete snapshot in use: it holds a shared lock that keeps
// pruning away until release.
type snapshot struct {
	dir  string
	meta snapshotMeta
	lock *os.File
}

func (s *snapshot) release() { s.lock.Close() }

func (h *qemuHypervisor) snapshotRoot() string { return filepath.Join(h.cacheDir, "snapshots") }

// snapshotKey names spec's shape: everything that a template bakes in.
func (h *qemuHypervisor) snapshotKey(spec vm.MachineSpec, accel string) (string, error) {
	bin, err := exec.LookPath(h.bins[spec.Arch])
	if err != nil {
		return "", err
	}
	hash := sha256.New()
	fmt.Fprintf(hash, "v%d %s %s %d %d %s\n", snapshotVersion, spec.Arch, accel, spec.CPUs, spec.MemoryMiB, spec.Network.Mode)
	for _, p := range []string{bin, spec.Kernel, spec.Initramfs} {
		st, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		abs, _ := filepath.Abs(p)
		fmt.Fprintf(hash, "%s %d %d\n", abs, st.Size(), st.ModTime().UnixNano())
	}
	for _, c := range spec.Cmdline { // kernel arguments (the agent's own keys are in spec.Boot)
		fmt.Fprintln(hash, c)
	}
	// The devices: a change to qemuArgs makes new snapshots.
	t := spec
	t.ID, t.Shares, t.Disks, t.Network.MAC = "template", nil, nil, ""
	fmt.Fprintln(hash, strings.Join(qemuArgs(t, accel, layout{cmdline: "-", snapshot: true, ring: h.ringFor(spec)}), " "))
	return spec.Arch + "-" + hex.EncodeToString(hash.Sum(nil))[:24], nil
}

// snapshotFor returns spec's snapshot, built now when there is none, with
// a shared lock held.
func (h *qemuHypervisor) snapshotFor(ctx context.Context, spec vm.MachineSpec, accel string) (*snapshot, error) {
	key, err := h.snapshotKey(spec, accel)
	if err != nil {
		return nil, fmt.Errorf("boot snapshot: %w", err)
	}
	root := h.snapshotRoot()
	// Private: a snapshot's RAM holds the template's random state (every
	// restored VM reseeds, but until then it is what its kernel has).
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("boot snapshot: %w", err)
	}
	_ = os.Chmod(root, 0o700) // made by an older version

	dir := filepath.Join(root, key)
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("boot snapshot: %w", err)
	}
	for _, how := range []int{unix.LOCK_SH, unix.LOCK_EX} {
		if err := flock(ctx, lock, how); err != nil {
			lock.Close()
			return nil, fmt.Errorf("boot snapshot %s: %w", key, err)
		}
		if meta, err := readSnapshotMeta(dir, key); err == nil {
			if how == unix.LOCK_EX {
				_ = flock(ctx, lock, unix.LOCK_SH) // another process built it meanwhile
			}
			now := time.Now()
			_ = os.Chtimes(filepath.Join(dir, "meta.json"), now, now) // recently used
			return &snapshot{dir: dir, meta: meta, lock: lock}, nil
		}
	}
	// Exclusive, and nothing usable there: build it.
	h.log.Info("building a boot snapshot (first boot of this VM shape)", zap.String("snapshot", key))
	start := time.Now()
	meta, err := h.buildSnapshot(ctx, spec, accel, key, dir)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("building boot snapshot %s: %w", key, err)
	}
	h.log.Info("boot snapshot built", zap.String("snapshot", key), zap.Duration("took", time.Since(start)))
	_ = flock(ctx, lock, unix.LOCK_SH)
	h.pruneSnapshots(key)
	return &snapshot{dir: dir, meta: meta, lock: lock}, nil
}

func readSnapshotMeta(dir, key string) (snapshotMeta, error) {
	var meta snapshotMeta
	b, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		return meta, err
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		return meta, err
	}
	if meta.Version != snapshotVersion || meta.Key != key || meta.Cmdline == "" {
		return meta, fmt.Errorf("snapshot %s: stale meta.json", key)
	}
	return meta, nil
}

// dropSnapshot removes snapshot key unless it is in use.
func (h *qemuHypervisor) dropSnapshot(key string) {
	l, err := os.OpenFile(filepath.Join(h.snapshotRoot(), key+".lock"), os.O_RDWR, 0)
	if err != nil {
		return
	}
	defer l.Close()
	if unix.Flock(int(l.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
		os.RemoveAll(filepath.Join(h.snapshotRoot(), key))
	}
}

// pruneSnapshots removes all but the maxSnapshots most recently used
// snapshots (and leftovers of interrupted builds), skipping any in use.
func (h *qemuHypervisor) pruneSnapshots(keep string) {
	root := h.snapshotRoot()
	ents, err := os.ReadDir(root)
	if err != nil {
		return
	}
	type snap struct {
		key  string
		used time.Time
	}
	var snaps []snap
	for _, e := range ents {
		name := e.Name()
		switch {
		case !e.IsDir() || name == keep:
		case strings.Contains(name, ".tmp-"):
			// An interrupted build's: its builder held the key's lock.
			if lockFree(filepath.Join(root, name[:strings.Index(name, ".tmp-")]+".lock")) {
				os.RemoveAll(filepath.Join(root, name))
			}
		default:
			used := time.Time{}
			if st, err := os.Stat(filepath.Join(root, name, "meta.json")); err == nil {
				used = st.ModTime()
			}
			snaps = append(snaps, snap{name, used})
		}
	}
	sort.Slice(snaps, func(i, j int) bool { return snaps[i].used.After(snaps[j].used) })
	for i := maxSnapshots - 1; i < len(snaps); i++ {
		l, err := os.OpenFile(filepath.Join(root, snaps[i].key+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			continue
		}
		if unix.Flock(int(l.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			os.RemoveAll(filepath.Join(root, snaps[i].key))
			h.log.Debug("boot snapshot pruned", zap.String("snapshot", snaps[i].key))
		}
		l.Close()
	}
	// A lock file stays while its key may still be in use: removing it
	// could let one process lock the removed file and another a new one.
	// Those of keys gone for a day are dropped.
	locks, _ := filepath.Glob(filepath.Join(root, "*.lock"))
	for _, l := range locks {
		st, err := os.Stat(l)
		if _, derr := os.Stat(strings.TrimSuffix(l, ".lock")); err == nil && os.IsNotExist(derr) &&
			time.Since(st.ModTime()) > 24*time.Hour && lockFree(l) {
			os.Remove(l)
		}
	}
}

// CacheUsage counts the complete boot snapshots and the disk space they
// take (allocated blocks: the RAM files are sparse).
func (h *qemuHypervisor) CacheUsage() (entries int, bytes int64) {
	metas, _ := filepath.Glob(filepath.Join(h.snapshotRoot(), "*", "meta.json"))
	for _, m := range metas {
		entries++
		files, _ := os.ReadDir(filepath.Dir(m))
		for _, f := range files {
			if info, err := f.Info(); err == nil {
				if st, ok := info.Sys().(*syscall.Stat_t); ok {
					bytes += st.Blocks * 512
				}
			}
		}
	}
	return entries, bytes
}

func lockFree(path string) bool {
	l, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	defer l.Close()
	return unix.Flock(int(l.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil
}

// flock takes a lock on f, giving up when ctx ends.
func flock(ctx context.Context, f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil || !errors.Is(err, unix.EWOULDBLOCK) {
			return err
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("waiting for another process building it: %w", ctx.Err())
		}
	}
}
