package images

import (
	"context"
	"os"
	"path/filepath"
	"sync"
)

// keyedMutex serialises work per key (a blob digest, an image ID).
type keyedMutex struct {
	mu    sync.Mutex // guards locks
	locks map[string]*keyedLock
}

type keyedLock struct {
	ch   chan struct{} // holds one token while locked
	refs int
}

// lock waits for key, or for ctx to end; the returned func unlocks.
func (k *keyedMutex) lock(ctx context.Context, key string) (func(), error) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyedLock{}
	}
	l := k.locks[key]
	if l == nil {
		l = &keyedLock{ch: make(chan struct{}, 1)}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()
	release := func() {
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// flight is one pull shared by every caller asking for the same reference and platform. It runs
// under its own context, cancelled when the last caller waiting for it gives up.
type flight struct {
	done   chan struct{}
	img    *Image
	err    error
	cancel context.CancelFunc

	mu       sync.Mutex // guards waiters and progress
	waiters  int
	progress []func(Progress)
}

func (f *flight) report(p Progress) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, fn := range f.progress {
		if fn != nil {
			fn(p)
		}
	}
}

// share runs fn once for key among concurrent callers; each caller gets progress and the result.
func (s *Store) share(ctx context.Context, key string, progress func(Progress),
	fn func(ctx context.Context, report func(Progress)) (*Image, error)) (*Image, error) {
	s.flightMu.Lock()
	f := s.flights[key]
	if f == nil {
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &flight{done: make(chan struct{}), cancel: cancel}
		s.flights[key] = f
		go func() {
			f.img, f.err = fn(fctx, f.report)
			s.flightMu.Lock()
			if s.flights[key] == f {
				delete(s.flights, key)
			}
			s.flightMu.Unlock()
			cancel()
			close(f.done)
		}()
	}
	f.mu.Lock()
	f.waiters++
	idx := len(f.progress)
	f.progress = append(f.progress, progress)
	f.mu.Unlock()
	s.flightMu.Unlock()

	select {
	case <-f.done:
		if f.img == nil {
			return nil, f.err
		}
		img := *f.img
		return &img, f.err
	case <-ctx.Done():
		s.flightMu.Lock() // no caller joins while the count drops to zero
		f.mu.Lock()
		f.progress[idx] = nil
		f.waiters--
		last := f.waiters == 0
		f.mu.Unlock()
		if last && s.flights[key] == f {
			delete(s.flights, key) // a caller arriving now starts afresh
		}
		s.flightMu.Unlock()
		if last {
			f.cancel()
			<-f.done // the pull has stopped and cleaned up when this returns
		}
		return nil, ctx.Err()
	}
}

// writeFileAtomic writes data to path through a synced temporary file and a rename, then syncs the
// directory, so a crash leaves the old file or the new one.
func writeFileAtomic(path string, data []byte) error {
	if err := writeFileSynced(path, data); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// writeFileSynced is writeFileAtomic without the directory sync: the file appears whole or not at
// all, but may be missing after a crash.
func writeFileSynced(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
