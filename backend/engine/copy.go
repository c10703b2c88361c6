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
	"strings"
	"syscall"
	"time"
)

// PathStat describes one path in a container's filesystem, as `docker cp` reports it.
type PathStat struct {
	Name       string      // the base name
	Size       int64       // bytes (a regular file)
	Mode       fs.FileMode // type and permission bits
	Mtime      time.Time   // last modification
	LinkTarget string      // for a symlink: where it points, as an absolute path in the container
}

// maxSymlinkHops bounds symlink resolution in a container path (Linux's MAXSYMLINKS).
const maxSymlinkHops = 40

// containerRoot opens the writable root of container ref. Every access through it stays beneath
// the root: os.Root refuses any path or symlink that would leave it.
func (e *Engine) containerRoot(ref string) (*os.Root, error) {
	c, err := e.lookup(ref)
	if err != nil {
		return nil, err
	}
	rec := c.snapshot()
	if rec.RootFS == "" {
		return nil, fmt.Errorf("copying files of container %s: its root filesystem is on disks the host does not read: %w", rec.Name, ErrNotSupported)
	}
	root, err := os.OpenRoot(rec.RootFS)
	if err != nil {
		return nil, fmt.Errorf("opening the root of container %q: %w", rec.ID, err)
	}
	return root, nil
}

// resolveInRoot turns p, a path in the container, into a path relative to root, following
// symlinks in every component but the last (the last too when followLast) the way a chroot would:
// absolute targets start again at the root and ".." stops at it. Components that do not exist are
// kept as written.
func resolveInRoot(root *os.Root, p string, followLast bool) (string, error) {
	var done []string
	rest := strings.Split(p, "/")
	for hops := 0; len(rest) > 0; {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			continue
		}
		cur := path.Join(append(done, c)...)
		fi, err := root.Lstat(cur)
		last := !hasComponent(rest)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 || (last && !followLast) {
			done = append(done, c)
			continue
		}
		if hops++; hops > maxSymlinkHops {
			return "", fmt.Errorf("resolving %q in the container: too many levels of symbolic links: %w", p, ErrInvalid)
		}
		target, err := root.Readlink(cur)
		if err != nil {
			return "", fmt.Errorf("resolving %q in the container: %w", p, err)
		}
		if path.IsAbs(target) {
			done = nil
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	if len(done) == 0 {
		return ".", nil
	}
	return path.Join(done...), nil
}

func hasComponent(parts []string) bool {
	for _, p := range parts {
		if p != "" && p != "." {
			return true
		}
	}
	return false
}

func statPath(root *os.Root, p, rel string) (PathStat, error) {
	fi, err := root.Lstat(rel)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return PathStat{}, fmt.Errorf("path %q in the container: %w", p, ErrNotFound)
		}
		return PathStat{}, fmt.Errorf("path %q in the container: %w", p, err)
	}
	st := PathStat{Name: path.Base("/" + rel), Size: fi.Size(), Mode: fi.Mode(), Mtime: fi.ModTime()}
	if rel == "." {
		st.Name = "/"
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := resolveInRoot(root, "/"+rel, true)
		if err != nil {
			return PathStat{}, err
		}
		st.LinkTarget = path.Clean("/" + target)
	}
	return st, nil
}

// StatPath describes path p in container ref without following a final symlink.
func (e *Engine) StatPath(ctx context.Context, ref, p string) (PathStat, error) {
	if err := ctx.Err(); err != nil {
		return PathStat{}, err
	}
	root, err := e.containerRoot(ref)
	if err != nil {
		return PathStat{}, err
	}
	defer root.Close()
	rel, err := resolveInRoot(root, p, false)
	if err != nil {
		return PathStat{}, err
	}
	return statPath(root, p, rel)
}

// CopyFrom returns a tar stream of path p in container ref (a file, a symlink, or a directory with
// everything beneath it), its entries named from p's base name as `docker cp` expects, and p's
// stat. A final symlink is archived as the link unless p ends in "/" or "/.".
func (e *Engine) CopyFrom(ctx context.Context, ref, p string) (io.ReadCloser, PathStat, error) {
	root, err := e.containerRoot(ref)
	if err != nil {
		return nil, PathStat{}, err
	}
	follow := strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.")
	rel, err := resolveInRoot(root, p, follow)
	if err != nil {
		root.Close()
		return nil, PathStat{}, err
	}
	st, err := statPath(root, p, rel)
	if err != nil {
		root.Close()
		return nil, PathStat{}, err
	}
	name := st.Name
	if rel == "." {
		name = "."
	}
	pr, pw := io.Pipe()
	go func() {
		defer root.Close()
		tw := tar.NewWriter(pw)
		err := archivePath(ctx, root, rel, name, tw)
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr, st, nil
}

// archivePath writes rel (relative to root) and what lies beneath it to tw as name.
func archivePath(ctx context.Context, root *os.Root, rel, name string, tw *tar.Writer) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fi, err := root.Lstat(rel)
	if err != nil {
		return err
	}
	link := ""
	if fi.Mode()&fs.ModeSymlink != 0 {
		if link, err = root.Readlink(rel); err != nil {
			return err
		}
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() && fi.Mode()&fs.ModeSymlink == 0 {
		return nil // sockets, fifos and devices are not copied out
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return fmt.Errorf("archiving %q: %w", rel, err)
	}
	hdr.Name, hdr.Uname, hdr.Gname = name, "", ""
	if fi.IsDir() {
		hdr.Name += "/"
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	switch {
	case fi.Mode().IsRegular():
		// O_NONBLOCK: a fifo swapped in since the Lstat must not block the copy.
		f, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return err
		}
		if ofi, err := f.Stat(); err != nil || !ofi.Mode().IsRegular() {
			f.Close()
			return fmt.Errorf("archiving %q: it changed while being copied", rel)
		}
		_, err = io.CopyN(tw, f, hdr.Size)
		f.Close()
		if err != nil {
			return fmt.Errorf("archiving %q: %w", rel, err)
		}
	case fi.IsDir():
		d, err := root.Open(rel)
		if err != nil {
			return err
		}
		ents, err := d.ReadDir(-1)
		d.Close()
		if err != nil {
			return err
		}
		for _, ent := range ents {
			if err := archivePath(ctx, root, path.Join(rel, ent.Name()), path.Join(name, ent.Name()), tw); err != nil {
				return err
			}
		}
	}
	return nil
}
