package engine

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// CopyToOptions tune CopyTo.
type CopyToOptions struct {
	// NoOverwriteDirNonDir refuses to replace a directory with a non-directory or the reverse.
	NoOverwriteDirNonDir bool
}

// CopyTo unpacks the tar stream r into directory dir of container ref (`docker cp` into a
// container). The stream is first spooled and checked whole, so an archive that is refused writes
// nothing: an entry whose name or hardlink target leaves dir ("../x", "/../x"), an entry beneath a
// symlink of the same archive, a device node or fifo (never created on the host) are refused with
// ErrInvalid. The unpacking itself goes through os.Root, so no symlink already in the container
// can lead a write outside the container's root. Files are owned by the engine's user (no chown);
// permission bits and mtimes are kept.
func (e *Engine) CopyTo(ctx context.Context, ref, dir string, r io.Reader, opts CopyToOptions) error {
	root, err := e.containerRoot(ref)
	if err != nil {
		return err
	}
	defer root.Close()
	rel, err := resolveInRoot(root, dir, true)
	if err != nil {
		return err
	}
	fi, err := root.Lstat(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("directory %q in the container: %w", dir, ErrNotFound)
	case err != nil:
		return fmt.Errorf("directory %q in the container: %w", dir, err)
	case !fi.IsDir():
		return fmt.Errorf("extraction point %q is not a directory: %w", dir, ErrInvalid)
	}
	dest, err := root.OpenRoot(rel)
	if err != nil {
		return fmt.Errorf("directory %q in the container: %w", dir, err)
	}
	defer dest.Close()

	spool, err := os.CreateTemp(filepath.Dir(root.Name()), "cp-*.tar")
	if err != nil {
		return fmt.Errorf("spooling the archive: %w", err)
	}
	defer func() { spool.Close(); os.Remove(spool.Name()) }()
	if _, err := io.Copy(spool, ctxReader{ctx, r}); err != nil {
		return fmt.Errorf("reading the archive: %w", err)
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := checkArchive(tar.NewReader(spool)); err != nil {
		return err
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return err
	}
	return extract(ctx, dest, tar.NewReader(spool), opts)
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// entryName cleans a tar entry name to a path relative to the destination; ok is false when it
// leaves it. "" is the destination itself.
func entryName(n string) (string, bool) {
	n = strings.TrimLeft(n, "/")
	if n == "" {
		return "", true
	}
	if !filepath.IsLocal(n) {
		return "", false
	}
	n = path.Clean(n)
	if n == "." {
		return "", true
	}
	return n, true
}

// checkArchive reads a whole archive and refuses what CopyTo must not unpack.
func checkArchive(tr *tar.Reader) error {
	links := map[string]bool{} // symlinks the archive makes
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the archive: %v: %w", err, ErrInvalid)
		}
		name, ok := entryName(hdr.Name)
		if !ok {
			return fmt.Errorf("archive entry %q leaves the destination directory: %w", hdr.Name, ErrInvalid)
		}
		for p := path.Dir(name); p != "." && p != "/" && name != ""; p = path.Dir(p) {
			if links[p] {
				return fmt.Errorf("archive entry %q lies beneath the archive's symlink %q: %w", hdr.Name, p, ErrInvalid)
			}
		}
		delete(links, name)
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeDir, tar.TypeXGlobalHeader:
		case tar.TypeSymlink:
			if name == "" {
				return fmt.Errorf("archive entry %q would replace the destination with a symlink: %w", hdr.Name, ErrInvalid)
			}
			links[name] = true
		case tar.TypeLink:
			if t, ok := entryName(hdr.Linkname); !ok || t == "" {
				return fmt.Errorf("archive hardlink %q to %q leaves the destination directory: %w", hdr.Name, hdr.Linkname, ErrInvalid)
			}
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			return fmt.Errorf("archive entry %q is a device node or fifo, which Skiff does not create: %w", hdr.Name, ErrInvalid)
		default:
			return fmt.Errorf("archive entry %q has unsupported type %q: %w", hdr.Name, hdr.Typeflag, ErrInvalid)
		}
	}
}

// extract unpacks a checked archive beneath dest.
func extract(ctx context.Context, dest *os.Root, tr *tar.Reader, opts CopyToOptions) error {
	type dirMeta struct {
		name string
		hdr  *tar.Header
	}
	var dirs []dirMeta // modes and mtimes set last: children change mtimes, a read-only mode blocks them
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the archive: %v: %w", err, ErrInvalid)
		}
		name, _ := entryName(hdr.Name)
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		if name == "" {
			continue // the destination itself: leave its metadata alone
		}
		if err := extractEntry(dest, tr, hdr, name, opts); err != nil {
			if escapesRoot(err) {
				return fmt.Errorf("unpacking %q: it lies beneath a symlink of the container that leads out of the destination: %w", hdr.Name, ErrInvalid)
			}
			return fmt.Errorf("unpacking %q: %w", hdr.Name, err)
		}
		if hdr.Typeflag == tar.TypeDir {
			dirs = append(dirs, dirMeta{name, hdr})
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		if err := dest.Chmod(d.name, fs.FileMode(d.hdr.Mode).Perm()|modeExtras(d.hdr.Mode)); err != nil {
			return fmt.Errorf("unpacking %q: %w", d.hdr.Name, err)
		}
		dest.Chtimes(d.name, d.hdr.ModTime, d.hdr.ModTime)
	}
	return nil
}

// modeExtras maps a tar mode's setuid, setgid and sticky bits to fs.FileMode's.
func modeExtras(m int64) fs.FileMode {
	var x fs.FileMode
	if m&0o4000 != 0 {
		x |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		x |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		x |= fs.ModeSticky
	}
	return x
}

func extractEntry(dest *os.Root, tr *tar.Reader, hdr *tar.Header, name string, opts CopyToOptions) error {
	if err := dest.MkdirAll(path.Dir(name), 0o755); err != nil {
		return err
	}
	isDir := hdr.Typeflag == tar.TypeDir
	if old, err := dest.Lstat(name); err == nil {
		switch {
		case old.IsDir() && isDir:
			return nil // merge into it; its metadata is set at the end
		case old.IsDir() != isDir && opts.NoOverwriteDirNonDir:
			return fmt.Errorf("cannot overwrite %s with %s: %w", kindOf(old.IsDir()), kindOf(isDir), ErrInvalid)
		}
		if err := dest.RemoveAll(name); err != nil {
			return err
		}
	}
	perm := fs.FileMode(hdr.Mode).Perm() | modeExtras(hdr.Mode)
	switch hdr.Typeflag {
	case tar.TypeDir:
		return dest.Mkdir(name, 0o700)
	case tar.TypeSymlink:
		return dest.Symlink(hdr.Linkname, name)
	case tar.TypeLink:
		target, _ := entryName(hdr.Linkname)
		return dest.Link(target, name)
	}
	f, err := dest.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, tr); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := dest.Chmod(name, perm); err != nil {
		return err
	}
	return dest.Chtimes(name, hdr.ModTime, hdr.ModTime)
}

func kindOf(dir bool) string {
	if dir {
		return "a directory"
	}
	return "a non-directory"
}

// escapesRoot reports whether err is os.Root's refusal of a path that leaves it (the error is not
// exported: os.errPathEscapes).
func escapesRoot(err error) bool {
	for ; err != nil; err = errors.Unwrap(err) {
		if err.Error() == "path escapes from parent" {
			return true
		}
	}
	return false
}
