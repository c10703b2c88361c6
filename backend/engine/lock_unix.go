//go:build unix

package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// HomeLock is an flock(2) on <home>/engine.lock, held for the engine's lifetime. A second engine on
// the same data dir (in this process or another) fails with ErrLocked naming the holder's pid.
// Whoever builds the graph takes it first (LockHome), before anything else touches the data dir
// (the image store removes an interrupted pull's temporaries when it opens: those of a running
// engine's pulls are not interrupted), and hands it to Open in Config.Lock.
type HomeLock struct {
	f    *os.File
	home string // absolute
}

// LockHome creates home (0700) if needed and locks it, or fails with ErrLocked.
func LockHome(home string) (*HomeLock, error) {
	abs, err := filepath.Abs(home)
	if err != nil {
		return nil, fmt.Errorf("data dir %q: %w", home, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("creating data dir: %w", err)
	}
	path := filepath.Join(abs, "engine.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder := ""
		if b, rerr := os.ReadFile(path); rerr == nil && len(strings.TrimSpace(string(b))) > 0 {
			holder = " (pid " + strings.TrimSpace(string(b)) + ")"
		}
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s%s: %w", abs, holder, ErrLocked)
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &HomeLock{f: f, home: abs}, nil
}

// Release drops the lock; releasing twice is harmless.
func (l *HomeLock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	_ = l.f.Truncate(0)
	err := l.f.Close() // closing the last descriptor drops the flock
	l.f = nil
	return err
}
