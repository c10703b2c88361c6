package app

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Images is the image service: list, inspect, pull with progress, remove, load and save.
type Images struct{ *base }

// List returns the images in the local store.
func (s *Images) List() ([]Image, error) {
	imgs, err := s.b.ListImages(s.ctx())
	if imgs == nil {
		imgs = []Image{}
	}
	return imgs, toError(err)
}

// Inspect returns one image by reference or ID.
func (s *Images) Inspect(ref string) (*Image, error) {
	if ref == "" {
		return nil, invalid("an image reference is required")
	}
	img, err := s.b.InspectImage(s.ctx(), ref)
	return img, toError(err)
}

// Pull pulls ref for platform ("" = the guest's), emitting progress on "progress:<progressID>"
// when progressID is set.
func (s *Images) Pull(ref, platform, progressID string) (*Image, error) {
	if ref == "" {
		return nil, invalid("an image reference is required")
	}
	if platform != "" && !platformRE.MatchString(platform) {
		return nil, invalid("invalid platform %q: expected linux/<arch>", platform)
	}
	p := s.progress(progressID, "pull")
	defer p.close()
	img, err := s.b.PullImage(s.ctx(), ref, platform, p.report)
	return img, toError(err)
}

// Remove removes an image; without force an image used by a container is kept (conflict).
func (s *Images) Remove(ref string, force bool) error {
	if ref == "" {
		return invalid("an image reference is required")
	}
	return toError(s.b.RemoveImage(s.ctx(), ref, force))
}

// Load loads the images of a docker-archive or OCI-layout tarball at path (on the engine's host).
// path must be a regular file: a FIFO, a device or a directory is refused before anything is read.
func (s *Images) Load(path string) ([]Image, error) {
	f, err := openArchive(path)
	if err != nil {
		return nil, invalid("loading images: %v", err)
	}
	defer f.Close()
	imgs, err := s.b.LoadImages(s.ctx(), f)
	return imgs, toError(err)
}

// Save writes refs as a tarball at path; format is "docker" (default) or "oci".
func (s *Images) Save(refs []string, path, format string) error {
	if len(refs) == 0 {
		return invalid("at least one image is required")
	}
	switch format {
	case "":
		format = "docker"
	case "docker", "oci":
	default:
		return invalid("invalid format %q: expected docker or oci", format)
	}
	if path == "" || !filepath.IsAbs(path) {
		return invalid("invalid output path %q: an absolute path is required", path)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".skiff-save-*")
	if err != nil {
		return invalid("saving images: %v", err)
	}
	defer os.Remove(tmp.Name())
	if err := s.b.SaveImages(s.ctx(), tmp, refs, format); err != nil {
		tmp.Close()
		return toError(err)
	}
	if err := tmp.Close(); err != nil {
		return toError(err)
	}
	return toError(os.Rename(tmp.Name(), path))
}

// Prune removes images no container uses.
func (s *Images) Prune() (*PruneReport, error) {
	deleted, freed, err := s.b.PruneImages(s.ctx())
	if err != nil {
		return nil, toError(err)
	}
	return &PruneReport{ImagesDeleted: nonNil(deleted), ContainersDeleted: []string{}, SpaceReclaimed: freed}, nil
}

// progressEmitter throttles the progress of one operation: per layer, the latest report is
// emitted at most every BatchInterval, and "done"-like statuses at once.
type progressEmitter struct {
	base  *base
	name  string
	phase string

	mu      sync.Mutex // guards pending and last
	pending map[string]Progress
	last    time.Time
	timer   *time.Timer
}

func (s *base) progress(id, phase string) *progressEmitter {
	return &progressEmitter{base: s, name: "progress:" + id, phase: phase, pending: map[string]Progress{}}
}

// report is safe for concurrent use; it is a no-op without a progress ID.
func (p *progressEmitter) report(pr Progress) {
	if p == nil || p.name == "progress:" {
		return
	}
	if pr.Phase == "" {
		pr.Phase = p.phase
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending[pr.Phase+"/"+pr.Layer] = pr
	if time.Since(p.last) >= BatchInterval {
		p.flushLocked()
	} else if p.timer == nil {
		p.timer = time.AfterFunc(BatchInterval, func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			p.flushLocked()
		})
	}
}

func (p *progressEmitter) flushLocked() {
	for k, pr := range p.pending {
		p.base.hub.sink.Emit(p.name, pr)
		delete(p.pending, k)
	}
	p.last = time.Now()
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
}

// close emits what is pending.
func (p *progressEmitter) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.flushLocked()
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// openArchive opens path for reading if it is a regular file (a symlink to one is the caller's own
// choice). O_NONBLOCK keeps the open of a FIFO from waiting for a writer; the check is on the opened
// file (fstat), so nothing swapped in after it is read.
func openArchive(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		kind := "special file"
		switch t := fi.Mode().Type(); {
		case t&fs.ModeDir != 0:
			kind = "directory"
		case t&fs.ModeNamedPipe != 0:
			kind = "FIFO"
		case t&fs.ModeDevice != 0:
			kind = "device"
		case t&fs.ModeSocket != 0:
			kind = "socket"
		}
		return nil, fmt.Errorf("%s is a %s, not an archive file", path, kind)
	}
	return f, nil
}
