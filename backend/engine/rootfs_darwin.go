//go:build darwin

package engine

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// cloneFile clones one file with clonefile(2) (APFS); elsewhere it fails and the caller copies.
func cloneFile(src, dst string) error {
	return unix.Clonefile(src, dst, unix.CLONE_NOFOLLOW)
}

// cloneWholeTree clones the whole directory in one clonefile(2) call, which on APFS copies the tree
// copy-on-write with its modes, owners, xattrs and times. Other filesystems report ENOTSUP and the
// caller walks the tree.
func cloneWholeTree(src, dst string) (bool, error) {
	err := unix.Clonefile(src, dst, unix.CLONE_NOFOLLOW)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EXDEV) {
		_ = os.RemoveAll(dst)
		return false, nil
	}
	return false, fmt.Errorf("cloning %s: %w", src, err)
}

func statTimes(st *syscall.Stat_t) (atime, mtime int64) {
	return st.Atimespec.Nano(), st.Mtimespec.Nano()
}
