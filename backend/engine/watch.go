package engine

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"golang.org/x/sys/unix"

	"github.com/skiff-containers/skiff/backend/agentproto"
)

// Host edits in a bind mount's source do not raise inotify events inside the guest (virtiofs does not
// deliver them). The engine watches each writable bind source with fsnotify and asks the agent to
// touch the matching guest paths, debounced, so watchers in the container (dev servers, test
// runners) see the edit. Only writes and creations are forwarded: the touch itself changes the mtime
// on the host (a chmod/attrib event), which must not echo back.
const (
	touchDebounce = 50 * time.Millisecond
	touchMaxDelay = 500 * time.Millisecond
	maxWatchDirs  = 8192 // per container, to stay within the user's inotify watch limit
)

// watchMounts starts the watcher for a boot; the returned func stops it.
func (c *ctr) watchMounts(mounts []Mount, client *agentproto.Client) func() {
	var ms []Mount
	for _, m := range mounts {
		if !m.ReadOnly {
			ms = append(ms, m)
		}
	}
	if len(ms) == 0 {
		return func() {}
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		c.e.log.Warn("watching bind mounts", zapID(c.rec.ID), zapErr(err))
		return func() {}
	}
	mw := &mountWatcher{w: w}
	mw.add = w.Add
	for _, m := range ms {
		if m.File { // a single file: its folder is watched, and only its own events map to the guest
			if f, ok := mw.addDir(filepath.Dir(m.Source)); ok {
				f.Close()
			}
			continue
		}
		mw.addTree(m.Source)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pending := map[string]bool{}
		var first time.Time
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		flush := func() {
			if len(pending) == 0 {
				return
			}
			paths := make([]string, 0, len(pending))
			for p := range pending {
				paths = append(paths, p)
			}
			pending = map[string]bool{}
			tctx, tcancel := context.WithTimeout(ctx, 5*time.Second)
			if err := client.Touch(tctx, paths); err != nil {
				c.e.log.Debug("touching guest paths", zapID(c.rec.ID), zapErr(err))
			}
			tcancel()
		}
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if !ev.Has(fsnotify.Write) && !ev.Has(fsnotify.Create) {
					continue
				}
				gp, ok := guestPath(ms, ev.Name)
				if !ok { // a sibling of a single-file bind's file
					continue
				}
				if ev.Has(fsnotify.Create) {
					mw.addTree(ev.Name) // nothing unless a directory (not a link to one)
				}
				if len(pending) == 0 {
					first = time.Now()
				}
				pending[gp] = true
				wait := touchDebounce
				if rest := touchMaxDelay - time.Since(first); rest < wait {
					wait = max(rest, 0)
				}
				timer.Reset(wait)
			case <-timer.C:
				flush()
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
			}
		}
	}()
	return func() {
		cancel()
		w.Close()
		wg.Wait()
	}
}

// guestPath maps a host path under a mount source to the path inside the container.
func guestPath(ms []Mount, host string) (string, bool) {
	for _, m := range ms {
		rel, err := filepath.Rel(m.Source, host)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			continue
		}
		return path.Join(m.Target, filepath.ToSlash(rel)), true
	}
	return "", false
}

// mountWatcher adds the directories of bind sources to an fsnotify watcher without following
// symbolic links. The guest can swap any directory in a writable bind source for a link to another
// host directory at any moment, and an inotify watch follows links in its path: each directory is
// opened with no link followed before and after its watch is added, and a watch whose directory
// changed in between (device and inode) is removed.
type mountWatcher struct {
	w    *fsnotify.Watcher
	add  func(path string) error // w.Add
	dirs int
}

// addTree watches root and the directories under it, up to maxWatchDirs in all.
func (mw *mountWatcher) addTree(root string) {
	f, ok := mw.addDir(root)
	if !ok {
		return
	}
	ents, err := f.ReadDir(-1) // the directory watched, whatever its path leads to now
	f.Close()
	if err != nil {
		return
	}
	for _, e := range ents {
		if e.IsDir() && mw.dirs < maxWatchDirs {
			mw.addTree(filepath.Join(root, e.Name()))
		}
	}
}

// addDir watches the directory at p and returns it open, or false when p is not a directory
// reached without a symbolic link (then nothing is watched).
func (mw *mountWatcher) addDir(p string) (*os.File, bool) {
	if mw.dirs >= maxWatchDirs {
		return nil, false
	}
	before, err := openDirNoFollow(p)
	if err != nil {
		return nil, false
	}
	if mw.add(p) != nil {
		before.Close()
		return nil, false
	}
	after, err := openDirNoFollow(p)
	if err == nil {
		defer after.Close()
	}
	if err != nil || !sameFile(before, after) {
		_ = mw.w.Remove(p)
		before.Close()
		return nil, false
	}
	mw.dirs++
	return before, true
}

// openDirNoFollow opens the directory at the absolute path p, following no symbolic link in any
// of its components.
func openDirNoFollow(p string) (*os.File, error) {
	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	if !filepath.IsAbs(p) {
		return nil, fmt.Errorf("opening %q: not an absolute path", p)
	}
	fd, err := unix.Open("/", flags, 0)
	if err != nil {
		return nil, fmt.Errorf("opening /: %w", err)
	}
	for _, name := range strings.Split(strings.Trim(filepath.Clean(p), "/"), "/") {
		if name == "" {
			continue
		}
		next, err := unix.Openat(fd, name, flags, 0)
		unix.Close(fd)
		if err != nil {
			return nil, fmt.Errorf("opening %q at %q: %w", p, name, err)
		}
		fd = next
	}
	return os.NewFile(uintptr(fd), p), nil
}

// sameFile reports whether a and b are the same file (device and inode).
func sameFile(a, b *os.File) bool {
	sa, err1 := a.Stat()
	sb, err2 := b.Stat()
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}
