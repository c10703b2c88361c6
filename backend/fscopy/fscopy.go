// Package fscopy is `docker cp` on a container's root directory, wherever that directory is: the
// engine uses it on the root of a container created before disks, the guest agent on the root it
// mounted. Every access goes through os.Root, so no path or symlink reaches outside the root;
// symlinks resolve as in a chroot.
package fscopy

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
	"syscall"
	"time"
)

// Errors callers branch on with errors.Is.
var (
	ErrNotFound = errors.New("no such file or directory in the container")
	ErrInvalid  = errors.New("invalid copy request")
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

// resolveInRoot turns p, a path in the container, into a path relative to root, following
// symlinks in every component but the last (the last too when followLast) the way a chroot would:
// absolute targets start again at the root and ".." stops at it. Components that do not exist are
// kept as written.
func Resolve(root *os.Root, p string, followLast bool) (string, error) {
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

// Stat describes rel (Resolve's result for p) without following a final symlink.
func Stat(root *os.Root, p, rel string) (PathStat, error) {
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
		target, err := Resolve(root, "/"+rel, true)
		if err != nil {
			return PathStat{}, err
		}
		st.LinkTarget = path.Clean("/" + target)
	}
	return st, nil
}

// Archive writes rel (relative to root) and what lies beneath it to tw as name.
func Archive(ctx context.Context, root *os.Root, rel, name string, tw *tar.Writer) error {
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
			if err := Archive(ctx, root, path.Join(rel, ent.Name()), path.Join(name, ent.Name()), tw); err != nil {
				return err
			}
		}
	}
	return nil
}

// CheckArchive reads a whole archive and refuses what Extract must not unpack: an entry whose name
// or hardlink target leaves the destination, an entry beneath a symlink of the same archive, a
// device node or fifo.
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

func CheckArchive(tr *tar.Reader) error {
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

// Extract unpacks an archive CheckArchive accepted beneath dest; noOverwrite refuses to replace a
// directory with a non-directory or the reverse.
func Extract(ctx context.Context, dest *os.Root, tr *tar.Reader, noOverwrite bool) error {
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
		if err := extractEntry(dest, tr, hdr, name, noOverwrite); err != nil {
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

func extractEntry(dest *os.Root, tr *tar.Reader, hdr *tar.Header, name string, noOverwrite bool) error {
	if err := dest.MkdirAll(path.Dir(name), 0o755); err != nil {
		return err
	}
	isDir := hdr.Typeflag == tar.TypeDir
	if old, err := dest.Lstat(name); err == nil {
		switch {
		case old.IsDir() && isDir:
			return nil // merge into it; its metadata is set at the end
		case old.IsDir() != isDir && noOverwrite:
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
