//go:build unix

package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// cloneTree makes dst a copy of the directory tree src (an image rootfs) for a container's writable
// root. Regular files are cloned (copy-on-write: FICLONE on Linux, clonefile(2) on macOS) and copied
// where the filesystem cannot clone; modes, owners (when permitted), extended attributes, symlinks,
// hardlinks, device nodes, fifos and mtimes are preserved. On macOS the whole tree is first tried as
// one clonefile(2) call.
func cloneTree(ctx context.Context, src, dst string) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return fmt.Errorf("image rootfs: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("image rootfs %s is not a directory", src)
	}
	if ok, err := cloneWholeTree(src, dst); ok || err != nil {
		return err
	}
	cp := &treeCopier{ctx: ctx, links: map[inodeKey]string{}, canChown: os.Geteuid() == 0}
	if err := cp.copyDir(src, dst, fi); err != nil {
		return err
	}
	return nil
}

type inodeKey struct{ dev, ino uint64 }

type treeCopier struct {
	ctx      context.Context
	links    map[inodeKey]string // first copy of each multiply-linked inode
	canChown bool
}

func (t *treeCopier) copyDir(src, dst string, fi fs.FileInfo) error {
	if err := t.ctx.Err(); err != nil {
		return err
	}
	if err := os.Mkdir(dst, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, ent := range ents {
		s, d := filepath.Join(src, ent.Name()), filepath.Join(dst, ent.Name())
		efi, err := os.Lstat(s)
		if err != nil {
			return err
		}
		if err := t.copyEntry(s, d, efi); err != nil {
			return fmt.Errorf("copying %s: %w", s, err)
		}
	}
	// The directory's own metadata last: children changed its mtime, and a read-only mode would
	// have blocked them.
	return t.copyMeta(src, dst, fi, false)
}

func (t *treeCopier) copyEntry(src, dst string, fi fs.FileInfo) error {
	st, _ := fi.Sys().(*syscall.Stat_t)
	switch m := fi.Mode(); {
	case m.IsDir():
		return t.copyDir(src, dst, fi)
	case m.IsRegular():
		if st != nil && st.Nlink > 1 {
			key := inodeKey{uint64(st.Dev), uint64(st.Ino)}
			if first, ok := t.links[key]; ok {
				return os.Link(first, dst)
			}
			t.links[key] = dst
		}
		if err := copyRegular(src, dst); err != nil {
			return err
		}
		return t.copyMeta(src, dst, fi, false)
	case m&fs.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
		return t.copyMeta(src, dst, fi, true)
	case m&(fs.ModeDevice|fs.ModeNamedPipe|fs.ModeSocket) != 0:
		if st == nil {
			return nil
		}
		if err := unix.Mknod(dst, uint32(st.Mode), int(st.Rdev)); err != nil {
			if errors.Is(err, os.ErrPermission) {
				return nil // device nodes need root; the guest's devtmpfs provides /dev anyway
			}
			return err
		}
		return t.copyMeta(src, dst, fi, false)
	}
	return nil
}

// copyRegular clones src to dst, falling back to a copy.
func copyRegular(src, dst string) error {
	if cloneFile(src, dst) == nil {
		return nil
	}
	_ = os.Remove(dst)
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil { // copy_file_range on Linux
		out.Close()
		return err
	}
	return out.Close()
}

// copyMeta applies owner, mode, xattrs and times of src (fi) to dst.
func (t *treeCopier) copyMeta(src, dst string, fi fs.FileInfo, symlink bool) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if ok && t.canChown {
		if err := os.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil && !errors.Is(err, os.ErrPermission) {
			return err
		}
	}
	copyXattrs(src, dst)
	if !symlink {
		if err := os.Chmod(dst, fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
			return err
		}
	}
	if ok {
		atime, mtime := statTimes(st)
		ts := []unix.Timespec{unix.NsecToTimespec(atime), unix.NsecToTimespec(mtime)}
		_ = unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW)
	}
	return nil
}

// copyXattrs copies extended attributes, skipping any the destination refuses (security.* without
// privilege, or a filesystem without xattrs).
func copyXattrs(src, dst string) {
	sz, err := unix.Llistxattr(src, nil)
	if err != nil || sz <= 0 {
		return
	}
	buf := make([]byte, sz)
	sz, err = unix.Llistxattr(src, buf)
	if err != nil {
		return
	}
	for _, name := range splitNul(buf[:sz]) {
		vsz, err := unix.Lgetxattr(src, name, nil)
		if err != nil {
			continue
		}
		val := make([]byte, vsz)
		if vsz > 0 {
			if vsz, err = unix.Lgetxattr(src, name, val); err != nil {
				continue
			}
		}
		_ = unix.Lsetxattr(dst, name, val[:vsz], 0)
	}
}

func splitNul(b []byte) []string {
	var out []string
	start := 0
	for i, c := range b {
		if c == 0 {
			if i > start {
				out = append(out, string(b[start:i]))
			}
			start = i + 1
		}
	}
	return out
}
