//go:build linux

package agent

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/hashicorp/yamux"
	"golang.org/x/sys/unix"
)

// findVirtioPort returns the /dev node of the virtio-serial port named name
// (no udev in the guest, so no /dev/virtio-ports links).
func findVirtioPort(sysClass, name string) (string, error) {
	ents, err := os.ReadDir(sysClass)
	if err != nil {
		return "", fmt.Errorf("listing virtio ports: %w", err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(sysClass, e.Name(), "name"))
		if err == nil && strings.TrimSpace(string(b)) == name {
			return "/dev/" + e.Name(), nil
		}
	}
	return "", fmt.Errorf("no virtio-serial port named %q in %s: %w", name, sysClass, os.ErrNotExist)
}

// yamuxConfig is the agent's side of the multiplexed serial channel. No
// keep-alives: a paused VM must not look dead after it resumes.
func yamuxConfig() *yamux.Config {
	c := yamux.DefaultConfig()
	c.EnableKeepAlive = false
	c.MaxStreamWindowSize = 4 << 20
	c.ConnectionWriteTimeout = time.Minute
	c.LogOutput = io.Discard
	return c
}

// openSerial opens the port for the agent channel, with raw reads and
// writes when it can (rawRead).
func openSerial(dev string) (io.ReadWriteCloser, error) {
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", dev, err)
	}
	if rc, ok := nonBlocking(f); ok {
		return &rawFile{File: f, rc: rc}, nil
	}
	return f, nil
}

// rawFile is the serial port with reads and writes made as raw system calls
// (see rawRead).
type rawFile struct {
	*os.File
	rc syscall.RawConn
}

func (f *rawFile) Read(b []byte) (int, error) { return rawRead(f.rc, b) }

func (f *rawFile) Write(b []byte) (int, error) { return rawWrite(f.rc, b) }

// nonBlocking returns c's descriptor for rawRead and rawWrite if it is in
// non-blocking mode (in the runtime's poller). A blocking one must not be
// used raw: a raw call that blocks holds the agent's only P.
func nonBlocking(c syscall.Conn) (syscall.RawConn, bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, false
	}
	flags := 0
	if rc.Control(func(fd uintptr) { flags, _ = unix.FcntlInt(fd, unix.F_GETFL, 0) }) != nil {
		return nil, false
	}
	return rc, flags&unix.O_NONBLOCK != 0
}

// rawRead reads from a non-blocking descriptor with a raw system call,
// waiting in the runtime's poller only when nothing is ready. Bulk copies use
// it. A system call the Go scheduler is told about lets sysmon take the P
// away once it has run for 20 µs, which every large read or write does in an
// emulated (TCG) guest; the hand-offs wake threads and keep sysmon polling
// every 20 µs, and each of those wake-ups reprograms the guest's timer, which
// costs such a guest more than the copy itself (measured: 4-5x fewer context
// switches and timer interrupts per MB forwarded, 1.5x less QEMU CPU).
func rawRead(rc syscall.RawConn, b []byte) (int, error) { return rawIO(rc.Read, unix.SYS_READ, b) }

// rawWrite writes all of b with raw system calls (see rawRead).
func rawWrite(rc syscall.RawConn, b []byte) (int, error) {
	done := 0
	for done < len(b) {
		n, err := rawIO(rc.Write, unix.SYS_WRITE, b[done:])
		done += n
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// rawIO makes one read or write system call through poll (rc.Read or
// rc.Write), which waits for readiness on EAGAIN.
func rawIO(poll func(func(fd uintptr) bool) error, trap uintptr, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	var n uintptr
	var errno syscall.Errno
	err := poll(func(fd uintptr) bool {
		for {
			n, _, errno = unix.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
			if errno != unix.EINTR {
				return errno != unix.EAGAIN
			}
		}
	})
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, errno
	case n == 0 && trap == unix.SYS_READ:
		return 0, io.EOF
	}
	return int(n), nil
}

// muxListener is a yamux server on one byte stream.
func muxListener(rw io.ReadWriteCloser) (net.Listener, error) {
	s, err := yamux.Server(rw, yamuxConfig())
	if err != nil {
		rw.Close()
		return nil, err
	}
	return s, nil
}

// vsockListener accepts AF_VSOCK connections on a port.
type vsockListener struct {
	f    *os.File
	port uint32
}

func listenVsock(port uint32) (net.Listener, error) {
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("vsock socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrVM{CID: unix.VMADDR_CID_ANY, Port: port}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("binding vsock port %d: %w", port, err)
	}
	if err := unix.Listen(fd, 128); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("listening on vsock port %d: %w", port, err)
	}
	_ = unix.SetNonblock(fd, true)
	return &vsockListener{f: os.NewFile(uintptr(fd), "vsock-listener"), port: port}, nil
}

// Accept returns the next connection from the host. The agent serves only its host: a connection
// from any other context (another guest, or a process inside this one) is closed unanswered.
func (l *vsockListener) Accept() (net.Conn, error) {
	rc, err := l.f.SyscallConn()
	if err != nil {
		return nil, err
	}
	for {
		var nfd int
		var peer unix.Sockaddr
		var aerr error
		err = rc.Read(func(fd uintptr) bool {
			nfd, peer, aerr = unix.Accept4(int(fd), unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK)
			return aerr != unix.EAGAIN
		})
		if err != nil {
			return nil, err
		}
		if aerr != nil {
			return nil, aerr
		}
		if !fromHost(peer) {
			unix.Close(nfd)
			continue
		}
		return &vsockConn{File: os.NewFile(uintptr(nfd), "vsock"), port: l.port}, nil
	}
}

// fromHost reports whether a vsock peer is the hypervisor's host (CID 2).
func fromHost(peer unix.Sockaddr) bool {
	vm, ok := peer.(*unix.SockaddrVM)
	return ok && vm.CID == unix.VMADDR_CID_HOST
}

func (l *vsockListener) Close() error   { return l.f.Close() }
func (l *vsockListener) Addr() net.Addr { return vsockAddr{port: l.port} }

type vsockAddr struct{ port uint32 }

func (vsockAddr) Network() string  { return "vsock" }
func (a vsockAddr) String() string { return fmt.Sprintf("vsock:%d", a.port) }

// vsockConn is an accepted vsock connection; CloseWrite half-closes.
type vsockConn struct {
	*os.File
	port uint32
}

func (c *vsockConn) LocalAddr() net.Addr  { return vsockAddr{port: c.port} }
func (c *vsockConn) RemoteAddr() net.Addr { return vsockAddr{} }
func (c *vsockConn) CloseWrite() error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Shutdown(int(fd), unix.SHUT_WR) }); err != nil {
		return err
	}
	return serr
}
