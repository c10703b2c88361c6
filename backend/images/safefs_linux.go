package images

import (
	"errors"

	"golang.org/x/sys/unix"
)

// openBeneath opens directory rel below rootfd with openat2(RESOLVE_BENEATH): the kernel refuses any
// resolution that leaves the root (".." above it, absolute or escaping symlinks) with EXDEV. Kernels
// without openat2 (before 5.6) use the portable component walk.
func openBeneath(rootfd int, rel string) (int, error) {
	how := unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	}
	for {
		fd, err := unix.Openat2(rootfd, rel, &how)
		switch {
		case err == nil:
			return fd, nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EXDEV):
			return -1, errEscape
		case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EPERM), errors.Is(err, unix.EAGAIN):
			// EPERM: seccomp filters in some sandboxes; EAGAIN: a concurrent rename.
			return walkBeneath(rootfd, rel, false)
		default:
			return -1, err
		}
	}
}

// mknodAt makes a device node or fifo.
func mknodAt(dirfd int, name string, mode uint32, dev uint64) error {
	return unix.Mknodat(dirfd, name, mode, int(dev))
}
