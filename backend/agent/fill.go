//go:build linux

package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"

	"github.com/skiff-containers/skiff/backend/fscopy"
)

// fill copies the container root's directory at target into the share directory dir when dir is
// empty (agentproto.MountSpec.Fill), before the share is mounted over target. A share with content,
// or a target the root does not have as a directory, is left alone. The target resolves inside the
// root as in a chroot. A copy that fails is removed again, so that the share is left empty (and
// the next mount fills it) rather than half filled.
//
// Owners: CopyTree gives each copy the owner of its original where the share lets it. A virtiofs
// daemon running unprivileged on the host refuses a chown to another user, and so does Skiff's
// virtiofsd for host folders on Linux (no CAP_CHOWN: a guest must not plant root's files on the
// host); the files then keep the owner the daemon gives them, and the mount goes on regardless.
// own (a disk volume's new directory): dir itself takes the owner and mode of the root's directory,
// as a new Docker volume does.
func (a *Agent) fill(ctx context.Context, dir, target string, own bool) error {
	dst, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer dst.Close()
	d, err := dst.Open(".")
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(1)
	d.Close()
	if len(names) > 0 {
		return nil
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("reading the share: %w", err)
	}
	src, err := os.OpenRoot(a.root.path)
	if err != nil {
		return fmt.Errorf("opening the container root: %w", err)
	}
	defer src.Close()
	rel, err := fscopy.Resolve(src, target, true)
	if err != nil {
		return err
	}
	if rel == "" || rel == "." {
		return nil
	}
	fi, err := src.Lstat(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return nil
	}
	if err := fscopy.CopyTree(ctx, src, rel, dst); err != nil {
		return errors.Join(err, emptyDir(dst))
	}
	if own {
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		if err := dst.Lchown(".", int(st.Uid), int(st.Gid)); err != nil {
			return fmt.Errorf("giving the volume the owner of %q: %w", target, err)
		}
		if err := dst.Chmod(".", fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
			return fmt.Errorf("giving the volume the mode of %q: %w", target, err)
		}
	}
	return nil
}

// emptyDir removes everything in the directory of dst.
func emptyDir(dst *os.Root) error {
	d, err := dst.Open(".")
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		if err := dst.RemoveAll(n); err != nil {
			errs = append(errs, fmt.Errorf("removing the partial copy: %w", err))
		}
	}
	return errors.Join(errs...)
}
