package qemu

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
)

// Sockets between host and children are passed as inherited fds, never as
// paths: nothing lands in the file system (no stale sockets, no 108-byte
// sun_path limit), and a socket dies with the last process holding it.

// socketPair returns a connected pair: one end as a net.Conn for us, the
// other as an *os.File to hand to a child.
func socketPair(name string) (net.Conn, *os.File, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair for %s: %w", name, err)
	}
	ours := os.NewFile(uintptr(fds[0]), name+"-host")
	theirs := os.NewFile(uintptr(fds[1]), name)
	conn, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		theirs.Close()
		return nil, nil, fmt.Errorf("socketpair for %s: %w", name, err)
	}
	return conn, theirs, nil
}

// listenerPair returns a listening unix socket (for a server child such as
// virtiofsd --fd) and a connection to it (for the client child, QEMU), both
// as files to inherit. The listener lives in the abstract namespace under a
// random name, so nothing else can find it in the file system.
func listenerPair(name string) (listener, client *os.File, err error) {
	var rnd [12]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, nil, err
	}
	addr := &net.UnixAddr{Net: "unix", Name: "@skiff-" + name + "-" + hex.EncodeToString(rnd[:])}
	l, err := net.ListenUnix("unix", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listening for %s: %w", name, err)
	}
	defer l.Close()
	c, err := net.DialUnix("unix", nil, addr)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to %s: %w", name, err)
	}
	defer c.Close()
	if listener, err = l.File(); err != nil {
		return nil, nil, fmt.Errorf("%s listener: %w", name, err)
	}
	if client, err = c.File(); err != nil {
		listener.Close()
		return nil, nil, fmt.Errorf("%s client: %w", name, err)
	}
	return listener, client, nil
}

// readLine reads one line (without its newline) byte by byte, so that
// nothing after it is consumed; at most max bytes.
func readLine(r io.Reader, max int) (string, error) {
	var line []byte
	var b [1]byte
	for len(line) < max {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return string(line), err
		}
		if b[0] == '\n' {
			return string(line), nil
		}
		line = append(line, b[0])
	}
	return "", fmt.Errorf("line longer than %d bytes: %q…", max, line[:40])
}
