package engine

import (
	"context"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

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
	dirs := 0
	addTree := func(root string) {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if dirs >= maxWatchDirs {
				return filepath.SkipAll
			}
			if w.Add(p) == nil {
				dirs++
			}
			return nil
		})
	}
	for _, m := range ms {
		addTree(m.Source)
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
				if ev.Has(fsnotify.Create) {
					if fi, err := lstatDir(ev.Name); err == nil && fi {
						addTree(ev.Name)
					}
				}
				gp, ok := guestPath(ms, ev.Name)
				if !ok {
					continue
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

func lstatDir(p string) (bool, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return false, err
	}
	return fi.IsDir(), nil
}
