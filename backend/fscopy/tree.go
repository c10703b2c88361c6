package fscopy

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"syscall"
)

// CopyTree copies what lies beneath the directory rel of src (not rel itself) into the directory
// dst, keeping modes, modification times and symbolic links (as links, their targets unchanged).
// It is Docker's copy-up of an image's content into a new volume. Owners are kept as far as dst
// allows: a file system that refuses to give a file to another user (a virtiofs share whose
// daemon runs unprivileged, or Skiff's virtiofsd for host folders, which keeps no CAP_CHOWN,
// answers EPERM) leaves it with the owner the file system gave it, and the copy goes on; so are
// setuid and setgid bits where the file system refuses them.
// Hard links are copied as separate files; sockets, fifos and device nodes are left out.
func CopyTree(ctx context.Context, src *os.Root, rel string, dst *os.Root) error {
	d, err := src.Open(rel)
	if err != nil {
		return err
	}
	ents, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return fmt.Errorf("reading %q: %w", rel, err)
	}
	for _, ent := range ents {
		if err := copyEntry(ctx, src, path.Join(rel, ent.Name()), dst, ent.Name()); err != nil {
			return err
		}
	}
	return nil
}

// copyEntry copies src's from to dst's to, and what lies beneath it.
func copyEntry(ctx context.Context, src *os.Root, from string, dst *os.Root, to string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fi, err := src.Lstat(from)
	if err != nil {
		return err
	}
	mode := fi.Mode()
	switch {
	case mode&fs.ModeSymlink != 0:
		link, err := src.Readlink(from)
		if err != nil {
			return err
		}
		if err := dst.Symlink(link, to); err != nil {
			return fmt.Errorf("copying %q: %w", from, err)
		}
		chownBestEffort(dst, to, fi)
		return nil
	case mode.IsDir():
		if err := dst.Mkdir(to, 0o700); err != nil {
			return fmt.Errorf("copying %q: %w", from, err)
		}
		d, err := src.Open(from)
		if err != nil {
			return err
		}
		ents, err := d.ReadDir(-1)
		d.Close()
		if err != nil {
			return fmt.Errorf("reading %q: %w", from, err)
		}
		for _, ent := range ents {
			if err := copyEntry(ctx, src, path.Join(from, ent.Name()), dst, path.Join(to, ent.Name())); err != nil {
				return err
			}
		}
	case mode.IsRegular():
		// O_NONBLOCK: a fifo swapped in since the Lstat must not block the copy.
		in, err := src.OpenFile(from, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return err
		}
		defer in.Close()
		if ifi, err := in.Stat(); err != nil || !ifi.Mode().IsRegular() {
			return fmt.Errorf("copying %q: it changed while being copied", from)
		}
		out, err := dst.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("copying %q: %w", from, err)
		}
		_, err = io.Copy(out, in)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("copying %q: %w", from, err)
		}
	default:
		return nil
	}
	// The owner first: a chown clears the setuid and setgid bits the chmod then sets.
	chownBestEffort(dst, to, fi)
	perm := mode.Perm() | mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
	if err := dst.Chmod(to, perm); err != nil {
		// A share that refuses setuid and setgid bits (Skiff's virtiofsd for host folders) gets
		// the rest of the mode.
		if perm&^(fs.ModeSetuid|fs.ModeSetgid) == perm || dst.Chmod(to, perm&^(fs.ModeSetuid|fs.ModeSetgid)) != nil {
			return fmt.Errorf("copying %q: %w", from, err)
		}
	}
	if err := dst.Chtimes(to, fi.ModTime(), fi.ModTime()); err != nil {
		return fmt.Errorf("copying %q: %w", from, err)
	}
	return nil
}

// chownBestEffort gives to the owner of fi, when dst lets it (see CopyTree).
func chownBestEffort(dst *os.Root, to string, fi fs.FileInfo) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return
	}
	_ = dst.Lchown(to, int(st.Uid), int(st.Gid))
}
