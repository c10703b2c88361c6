//go:build linux || darwin

// Package snapcache is the boot snapshot cache both VM backends share
// (QEMU's backend/vm/qemu, vz's backend/vm/vz): one directory per shape key
// under a root (meta.json, written last, and whatever files the backend
// saves), a lock file per key (shared while a snapshot is in use, exclusive
// while it is built), builds that appear complete or not at all, pruning
// down to the most recently used, and the keys that failed to restore
// (their shape boots cold for a while). What a snapshot holds, and how a
// shape's key is made (Hash), is the backend's.
//
//	c := snapcache.New(filepath.Join(cacheDir, "snapshots"), version, log)
//	snap, err := c.Get(ctx, key, func(ctx context.Context, tmp string) (string, error) {
//		// boot the template, save its state into tmp; return its kernel command line
//	})
//	defer snap.Release()
package snapcache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// DefaultMax is how many snapshots (~70–100 MB each under QEMU) are kept
// unless Cache.Max says otherwise; the least recently used go first.
const DefaultMax = 4

// Retry is how long a key whose snapshot failed boots cold before its
// snapshot is tried again.
const Retry = 10 * time.Minute

// Meta is a complete snapshot's meta.json, written last.
type Meta struct {
	Version int    `json:"version"`
	Key     string `json:"key"`
	// Cmdline is the template's kernel command line; its VMs boot with the
	// same one (a restore must not change the devices' configuration).
	Cmdline string    `json:"cmdline"`
	Created time.Time `json:"created"`
}

// Snapshot is a complete snapshot in use: it holds a shared lock that
// keeps pruning and Drop away until Release.
type Snapshot struct {
	Dir  string // the snapshot's directory
	Meta Meta
	lock *os.File
}

// Release lets the snapshot be pruned or dropped again.
func (s *Snapshot) Release() { s.lock.Close() }

// Build saves a template's state into tmp (an empty directory of its own)
// and returns the template's kernel command line. On an error, or when ctx
// ends, the cache removes tmp.
type Build func(ctx context.Context, tmp string) (cmdline string, err error)

// Cache is the snapshots under one root directory.
type Cache struct {
	root    string
	version int
	log     *zap.Logger
	// Max is how many snapshots are kept (DefaultMax unless changed before use).
	Max int

	mu     sync.Mutex           // guards failed
	failed map[string]time.Time // when a key failed to build or restore
}

// New returns the cache at root for snapshots of the given protocol
// version (a snapshot of another version is rebuilt). A nil log is quiet.
func New(root string, version int, log *zap.Logger) *Cache {
	if log == nil {
		log = zap.NewNop()
	}
	return &Cache{root: root, version: version, log: log, Max: DefaultMax, failed: map[string]time.Time{}}
}

// Root is the cache's directory.
func (c *Cache) Root() string { return c.root }

// ErrBadKey: a key that cannot name a snapshot directory.
var ErrBadKey = errors.New("invalid snapshot key")

func checkKey(key string) error {
	if key == "" || key == "." || key == ".." || strings.ContainsAny(key, `/\`) || strings.Contains(key, ".tmp-") ||
		strings.HasSuffix(key, ".lock") {
		return fmt.Errorf("%q: %w", key, ErrBadKey)
	}
	return nil
}

// Get returns key's snapshot with a shared lock held, built now with build
// when there is none (or only an older version's). Processes and goroutines
// asking for one key at once build it once: the others wait, until ctx
// ends, for the builder's exclusive lock.
func (c *Cache) Get(ctx context.Context, key string, build Build) (*Snapshot, error) {
	if err := checkKey(key); err != nil {
		return nil, fmt.Errorf("boot snapshot: %w", err)
	}
	// Private: a snapshot's RAM holds the template's random state (every
	// restored VM reseeds, but until then it is what its kernel has).
	if err := os.MkdirAll(c.root, 0o700); err != nil {
		return nil, fmt.Errorf("boot snapshot: %w", err)
	}
	_ = os.Chmod(c.root, 0o700) // made by an older version

	dir := filepath.Join(c.root, key)
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("boot snapshot: %w", err)
	}
	for _, how := range []int{unix.LOCK_SH, unix.LOCK_EX} {
		if err := flock(ctx, lock, how); err != nil {
			lock.Close()
			return nil, fmt.Errorf("boot snapshot %s: %w", key, err)
		}
		if meta, err := c.readMeta(dir, key); err == nil {
			if how == unix.LOCK_EX {
				_ = flock(ctx, lock, unix.LOCK_SH) // another process built it meanwhile
			}
			now := time.Now()
			_ = os.Chtimes(filepath.Join(dir, "meta.json"), now, now) // recently used
			return &Snapshot{Dir: dir, Meta: meta, lock: lock}, nil
		}
	}
	// Exclusive, and nothing usable there: build it.
	c.log.Info("building a boot snapshot (first boot of this VM shape)", zap.String("snapshot", key))
	start := time.Now()
	meta, err := c.build(ctx, key, dir, build)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("building boot snapshot %s: %w", key, err)
	}
	c.log.Info("boot snapshot built", zap.String("snapshot", key), zap.Duration("took", time.Since(start)))
	_ = flock(ctx, lock, unix.LOCK_SH)
	c.Prune(key)
	return &Snapshot{Dir: dir, Meta: meta, lock: lock}, nil
}

// build runs b in a temporary directory beside dir, which appears complete
// or not at all (meta.json last, then a rename).
func (c *Cache) build(ctx context.Context, key, dir string, b Build) (meta Meta, err error) {
	_ = os.RemoveAll(dir) // an old version's
	tmp, err := os.MkdirTemp(c.root, key+".tmp-")
	if err != nil {
		return meta, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	cmdline, err := b(ctx, tmp)
	if err != nil {
		return meta, err
	}
	if cmdline == "" {
		return meta, errors.New("the template has no kernel command line")
	}
	meta = Meta{Version: c.version, Key: key, Cmdline: cmdline, Created: time.Now().UTC()}
	data, _ := json.MarshalIndent(meta, "", "  ")
	if err = writeFileSync(filepath.Join(tmp, "meta.json"), data); err != nil {
		return meta, err
	}
	if err = os.Rename(tmp, dir); err != nil {
		return meta, err
	}
	return meta, nil
}

// writeFileSync writes a new file and makes it durable.
func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (c *Cache) readMeta(dir, key string) (Meta, error) {
	var meta Meta
	b, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		return meta, err
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		return meta, err
	}
	if meta.Version != c.version || meta.Key != key || meta.Cmdline == "" {
		return meta, fmt.Errorf("snapshot %s: stale meta.json", key)
	}
	return meta, nil
}

// Failed reports whether key failed within Retry (its shape boots cold).
func (c *Cache) Failed(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Since(c.failed[key]) < Retry
}

// Fail records that key's snapshot could not be built or restored: it is
// dropped (unless in use) and its shape boots cold for Retry.
func (c *Cache) Fail(key string) {
	c.mu.Lock()
	c.failed[key] = time.Now()
	c.mu.Unlock()
	c.Drop(key)
}

// Drop removes snapshot key unless it is in use.
func (c *Cache) Drop(key string) {
	if checkKey(key) != nil {
		return
	}
	l, err := os.OpenFile(filepath.Join(c.root, key+".lock"), os.O_RDWR, 0)
	if err != nil {
		return
	}
	defer l.Close()
	if unix.Flock(int(l.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
		os.RemoveAll(filepath.Join(c.root, key))
	}
}

// Prune removes all but the Max most recently used snapshots (keep, which
// counts, among them) and leftovers of interrupted builds, skipping any in
// use.
func (c *Cache) Prune(keep string) {
	ents, err := os.ReadDir(c.root)
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
			if lockFree(filepath.Join(c.root, name[:strings.Index(name, ".tmp-")]+".lock")) {
				os.RemoveAll(filepath.Join(c.root, name))
			}
		default:
			used := time.Time{}
			if st, err := os.Stat(filepath.Join(c.root, name, "meta.json")); err == nil {
				used = st.ModTime()
			}
			snaps = append(snaps, snap{name, used})
		}
	}
	sort.Slice(snaps, func(i, j int) bool { return snaps[i].used.After(snaps[j].used) })
	for i := max(c.Max-1, 0); i < len(snaps); i++ {
		l, err := os.OpenFile(filepath.Join(c.root, snaps[i].key+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			continue
		}
		if unix.Flock(int(l.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			os.RemoveAll(filepath.Join(c.root, snaps[i].key))
			c.log.Debug("boot snapshot pruned", zap.String("snapshot", snaps[i].key))
		}
		l.Close()
	}
	// A lock file stays while its key may still be in use: removing it
	// could let one process lock the removed file and another a new one.
	// Those of keys gone for a day are dropped.
	locks, _ := filepath.Glob(filepath.Join(c.root, "*.lock"))
	for _, l := range locks {
		st, err := os.Stat(l)
		if _, derr := os.Stat(strings.TrimSuffix(l, ".lock")); err == nil && os.IsNotExist(derr) &&
			time.Since(st.ModTime()) > 24*time.Hour && lockFree(l) {
			os.Remove(l)
		}
	}
}

// Usage counts the complete snapshots and the disk space they take
// (allocated blocks: saved RAM files may be sparse).
func (c *Cache) Usage() (entries int, bytes int64) {
	metas, _ := filepath.Glob(filepath.Join(c.root, "*", "meta.json"))
	for _, m := range metas {
		entries++
		files, _ := os.ReadDir(filepath.Dir(m))
		for _, f := range files {
			if info, err := f.Info(); err == nil {
				if st, ok := info.Sys().(*syscall.Stat_t); ok {
					bytes += int64(st.Blocks) * 512
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
