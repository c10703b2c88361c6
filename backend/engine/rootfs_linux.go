package engine

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// cloneFile creates dst sharing src's extents (FICLONE: btrfs, XFS with reflink, bcachefs). It
// fails (EOPNOTSUPP, EXDEV, EINVAL) where the filesystem cannot, and the caller copies instead.
func cloneFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := unix.IoctlFileClone(int(out.Fd()), int(in.Fd())); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// cloneWholeTree: Linux has no one-call tree clone.
func cloneWholeTree(src, dst string) (bool, error) { return false, nil }

func statTimes(st *syscall.Stat_t) (atime, mtime int64) {
	return st.Atim.Nano(), st.Mtim.Nano()
}
