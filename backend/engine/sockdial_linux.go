//go:build linux

package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"golang.org/x/sys/unix"
)

// dialPinnedSocket connects to the unix socket at real, a path without symbolic links (pinned by
// Create), following none: the socket is opened as an O_PATH descriptor (openat2 with
// RESOLVE_NO_SYMLINKS: a link anywhere in the path, the last component too, is refused), checked
// to be a socket, and connected to through /proc/self/fd, so the socket checked is the one
// connected to, whatever is renamed meanwhile.
func dialPinnedSocket(ctx context.Context, real string) (net.Conn, error) {
	fd, err := unix.Openat2(unix.AT_FDCWD, real, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC | unix.O_NOFOLLOW,
		Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if errors.Is(err, unix.ENOSYS) { // a kernel before 5.6: check the path, then open its last component without following it
		if _, perr := pinSocket(real, real); perr != nil {
			return nil, perr
		}
		fd, err = unix.Open(real, unix.O_PATH|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	}
	if errors.Is(err, unix.ELOOP) {
		return nil, fmt.Errorf("host socket %s: a symbolic link is now in its path: %w", real, ErrInvalid)
	}
	if err != nil {
		return nil, fmt.Errorf("opening host socket %s: %w", real, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("host socket %s: %w", real, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return nil, fmt.Errorf("host socket %s is no longer a unix socket: %w", real, ErrInvalid)
	}
	c, err := (&net.Dialer{}).DialContext(ctx, "unix", "/proc/self/fd/"+strconv.Itoa(fd))
	if err != nil {
		return nil, fmt.Errorf("connecting to host socket %s: %w", real, unwrapOp(err))
	}
	return c, nil
}
