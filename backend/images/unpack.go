//go:build linux || darwin

package images

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/skiff-containers/skiff/backend/images/internal/tarpath"
)

// whiteoutPrefix marks a deleted path in a layer (OCI image spec, "Whiteouts"); whiteoutOpaque hides
// everything the lower layers put in its directory.
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// applier applies layer tarballs, in order, to one rootfs directory. It is used by one goroutine.
type applier struct {
	root    *fsRoot
	buf     []byte
	written map[string]bool    // paths the current layer created: an opaque marker keeps them
	dirs    map[string]dirMeta // final mode and mtime of directories, applied by finish
	size    int64              // bytes of regular file content written
	// maxLayer bounds the file content one layer writes (0: no bound). A sparse entry's holes
	// count: they are written as zeros.
	maxLayer  int64
	layerSize int64 // file content the current layer wrote
	// filesOnly refuses every entry but regular files and directories, and sparse files (archive
	// extraction, where nothing else belongs).
	filesOnly bool
}

type dirMeta struct {
	mode  uint32
	mtime time.Time
}

// newApplier returns an applier writing beneath root. Files belong to the process's user: owners
// and device nodes are an image disk's business (backend/images/disk), never the host's.
func newApplier(root *fsRoot) *applier {
	return &applier{root: root, buf: make([]byte, 1<<20), dirs: map[string]dirMeta{}}
}

// applyLayer reads one uncompressed layer tarball and applies it. Errors name the entry.
func (a *applier) applyLayer(ctx context.Context, r io.Reader) error {
	a.written = map[string]bool{}
	a.layerSize = 0
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		if n%64 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading tar: %w", err)
		}
		if err := a.apply(hdr, tr); err != nil {
			return fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
	}
}

// parent opens the directory that will hold rel, creating missing directories.
func (a *applier) parent(dir string, create bool) (int, error) {
	fd, err := a.root.dir(dir, create)
	if errors.Is(err, errEscape) {
		return -1, fmt.Errorf("%w: %q resolves outside the image root (through a symlink or \"..\")", ErrUnsafeEntry, dir)
	}
	if errors.Is(err, unix.ENOTDIR) {
		return -1, fmt.Errorf("parent %q is not a directory: %w", dir, err)
	}
	return fd, err
}

func (a *applier) apply(hdr *tar.Header, r io.Reader) error {
	rel, err := tarpath.Clean(hdr.Name)
	if err != nil {
		return err
	}
	if len(a.root.dirs) >= 256 {
		a.root.dropCache() // only here, so no fd an entry is using is closed under it
	}
	if a.filesOnly {
		if err := plainEntry(hdr, false); err != nil {
			return err
		}
	}
	dir, base := tarpath.Split(rel)
	if strings.HasPrefix(base, whiteoutPrefix) && !a.filesOnly {
		return a.whiteout(dir, base)
	}
	if rel == "." {
		if hdr.Typeflag == tar.TypeDir {
			a.dirs["."] = dirMeta{mode: uint32(hdr.Mode & 0o7777), mtime: hdr.ModTime}
			return nil
		}
		return fmt.Errorf("%w: the root is not a directory", ErrUnsafeEntry)
	}
	pfd, err := a.parent(dir, true)
	if err != nil {
		return err
	}
	a.written[rel] = true
	perm := uint32(hdr.Mode & 0o7777)
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := unix.Mkdirat(pfd, base, 0o755); errors.Is(err, unix.EEXIST) {
			st, _, serr := lstatAt(pfd, base)
			if serr != nil {
				return serr
			}
			if st.Mode&unix.S_IFMT != unix.S_IFDIR {
				if err := a.replace(pfd, base, rel); err != nil {
					return err
				}
				if err := unix.Mkdirat(pfd, base, 0o755); err != nil {
					return err
				}
			}
		} else if err != nil {
			return err
		}
		a.dirs[rel] = dirMeta{mode: perm, mtime: hdr.ModTime}
		return nil
	case tar.TypeReg:
		return a.regular(pfd, base, rel, hdr, r)
	case tar.TypeSymlink:
		err := unix.Symlinkat(hdr.Linkname, pfd, base)
		if errors.Is(err, unix.EEXIST) {
			if err = a.replace(pfd, base, rel); err == nil {
				err = unix.Symlinkat(hdr.Linkname, pfd, base)
			}
		}
		if err != nil {
			return err
		}
		return setTimes(pfd, base, hdr.ModTime)
	case tar.TypeLink:
		return a.hardlink(pfd, base, rel, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return a.special(pfd, base, rel, hdr)
	case tar.TypeXGlobalHeader:
		return nil
	default:
		// Unknown or unsupported types (GNU volume headers, ...) carry nothing to unpack.
		return nil
	}
}

func (a *applier) regular(pfd int, base, rel string, hdr *tar.Header, r io.Reader) error {
	const flags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(pfd, base, flags, 0o600)
	if errors.Is(err, unix.EEXIST) {
		if err = a.replace(pfd, base, rel); err == nil {
			fd, err = unix.Openat(pfd, base, flags, 0o600)
		}
	}
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), rel)
	src := r
	if a.maxLayer > 0 {
		src = io.LimitReader(r, a.maxLayer-a.layerSize+1)
	}
	n, err := io.CopyBuffer(f, src, a.buf)
	a.size += n
	if a.layerSize += n; a.maxLayer > 0 && a.layerSize > a.maxLayer && err == nil {
		err = fmt.Errorf("%w: the layer's files hold more than %d bytes (the store's limit; this entry claims %d)",
			ErrTooLarge, a.maxLayer, hdr.Size)
	}
	if err == nil {
		err = unix.Fchmod(fd, hdr2mode(hdr))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return setTimes(pfd, base, hdr.ModTime)
}

func hdr2mode(hdr *tar.Header) uint32 { return uint32(hdr.Mode & 0o7777) }

func (a *applier) hardlink(pfd int, base, rel string, hdr *tar.Header) error {
	target, err := tarpath.Clean(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
	}
	if target == rel {
		return nil
	}
	tdir, tbase := tarpath.Split(target)
	tfd, err := a.parent(tdir, false)
	if err != nil {
		return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
	}
	st, ok, err := lstatAt(tfd, tbase)
	if err != nil || !ok {
		return fmt.Errorf("hardlink target %q does not exist", hdr.Linkname)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return fmt.Errorf("%w: hardlink to directory %q", ErrUnsafeEntry, hdr.Linkname)
	}
	err = unix.Linkat(tfd, tbase, pfd, base, 0)
	if errors.Is(err, unix.EEXIST) {
		if err = a.replace(pfd, base, rel); err == nil {
			err = unix.Linkat(tfd, tbase, pfd, base, 0)
		}
	}
	return err
}

// special makes a fifo; a device node is refused: the host never creates one.
func (a *applier) special(pfd int, base, rel string, hdr *tar.Header) error {
	if hdr.Typeflag != tar.TypeFifo {
		return fmt.Errorf("%w: a device node, which is never created on the host", ErrUnsafeEntry)
	}
	if err := a.replace(pfd, base, rel); err != nil {
		return err
	}
	if err := mknodAt(pfd, base, unix.S_IFIFO|hdr2mode(hdr)&0o777, 0); err != nil {
		return err
	}
	if err := unix.Fchmodat(pfd, base, hdr2mode(hdr), 0); err != nil {
		return err
	}
	return setTimes(pfd, base, hdr.ModTime)
}

// replace removes whatever is at base so a new entry can take its place.
func (a *applier) replace(pfd int, base, rel string) error {
	st, ok, err := lstatAt(pfd, base)
	if err != nil || !ok {
		return err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		a.forget(rel)
		return removeAllAt(pfd, base)
	case unix.S_IFLNK:
		a.forget(rel)
	}
	return unix.Unlinkat(pfd, base, 0)
}

// forget drops cached directory fds at or below rel: that path is about to stop being that directory.
func (a *applier) forget(rel string) {
	for k, fd := range a.root.dirs {
		if k == rel || strings.HasPrefix(k, rel+"/") {
			unix.Close(fd)
			delete(a.root.dirs, k)
		}
	}
}

func (a *applier) whiteout(dir, base string) error {
	pfd, err := a.parent(dir, false)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil // nothing below to hide
	}
	if err != nil {
		return err
	}
	if base == whiteoutOpaque {
		prefix := tarpath.Join(dir, "")
		for k, fd := range a.root.dirs {
			if strings.HasPrefix(k, prefix) && k != dir {
				unix.Close(fd)
				delete(a.root.dirs, k)
			}
		}
		return emptyDirAt(pfd, ".", func(child string) bool { return a.written[tarpath.Join(dir, child)] })
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("%w: whiteout of %q", ErrUnsafeEntry, name)
	}
	rel := tarpath.Join(dir, name)
	if a.written[rel] {
		return nil // whiteouts hide lower layers only
	}
	a.forget(rel)
	return removeAllAt(pfd, name)
}

func setTimes(pfd int, base string, mtime time.Time) error {
	ts := unix.NsecToTimespec(mtime.UnixNano())
	err := unix.UtimesNanoAt(pfd, base, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
		return nil // times before the epoch or on a filesystem without symlink times
	}
	return err
}

// finish applies directory modes and mtimes, deepest first, after every layer is in place.
func (a *applier) finish() error {
	rels := make([]string, 0, len(a.dirs))
	for rel := range a.dirs {
		rels = append(rels, rel)
	}
	sort.Slice(rels, func(i, j int) bool {
		di, dj := strings.Count(rels[i], "/"), strings.Count(rels[j], "/")
		if di != dj {
			return di > dj
		}
		return rels[i] > rels[j]
	})
	for _, rel := range rels {
		m := a.dirs[rel]
		if rel == "." {
			// The root's mode is kept: it is the store's directory, 0755 or 0700.
			continue
		}
		dir, base := tarpath.Split(rel)
		pfd, err := a.root.dir(dir, false)
		if err != nil {
			continue // removed or replaced by a later layer
		}
		st, ok, err := lstatAt(pfd, base)
		if err != nil || !ok || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		if err := unix.Fchmodat(pfd, base, m.mode, 0); err != nil {
			return fmt.Errorf("chmod %q: %w", rel, err)
		}
		if err := setTimes(pfd, base, m.mtime); err != nil {
			return fmt.Errorf("setting times of %q: %w", rel, err)
		}
	}
	return nil
}
