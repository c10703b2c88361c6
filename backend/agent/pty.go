//go:build linux

package agent

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// openPTY opens a new pseudo-terminal on the devpts instance whose ptmx is
// ptmxFd (consumed), so the terminal's /dev/pts/N exists in the container
// that owns that devpts. The master is non-blocking (closing it unblocks
// readers).
func openPTY(ptmxFd int, rows, cols uint16) (master, slave *os.File, err error) {
	if err := unix.IoctlSetPointerInt(ptmxFd, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(ptmxFd)
		return nil, nil, fmt.Errorf("unlocking pty: %w", err)
	}
	sfd, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(ptmxFd), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		unix.Close(ptmxFd)
		return nil, nil, fmt.Errorf("opening pty peer: %w", errno)
	}
	if rows == 0 || cols == 0 {
		rows, cols = 24, 80
	}
	_ = unix.IoctlSetWinsize(ptmxFd, unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
	_ = unix.SetNonblock(ptmxFd, true)
	return os.NewFile(uintptr(ptmxFd), "ptmx"), os.NewFile(sfd, "pts"), nil
}

// openPTYInRoot opens a pty on the devpts mounted at /dev/pts in r.
func openPTYInRoot(r *root, rows, cols uint16) (master, slave *os.File, err error) {
	fd, err := r.open("/dev/pts/ptmx", unix.O_RDWR|unix.O_NOCTTY)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the container's /dev/pts/ptmx: %w", err)
	}
	return openPTY(fd, rows, cols)
}

// sendFd passes fd over the unix socket sock.
func sendFd(sock, fd int) error {
	return unix.Sendmsg(sock, []byte{0}, unix.UnixRights(fd), nil, 0)
}

// recvFd receives one fd from the unix socket sock; EOF gives an error.
func recvFd(sock int) (int, error) {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(sock, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, err
		}
		if n == 0 && oobn == 0 {
			return -1, fmt.Errorf("no terminal received: %w", os.ErrClosed)
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			return -1, fmt.Errorf("bad fd message: %v", err)
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			return -1, fmt.Errorf("bad fd message: %v", err)
		}
		return fds[0], nil
	}
}
