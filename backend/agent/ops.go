//go:build linux

package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"golang.org/x/sys/unix"
)

// shareSource returns the directory that holds share tag: the --share
// directory in host mode; in VM mode the virtiofs tag, mounted once under
// /run/skiff/shares.
func (a *Agent) shareSource(tag string) (string, error) {
	if tag == "" || filepath.Base(tag) != tag || tag == "." || tag == ".." {
		return "", fmt.Errorf("share tag %q: %w", tag, errBadRequest)
	}
	if !a.cfg.VM {
		dir, ok := a.cfg.Shares[tag]
		if !ok {
			return "", fmt.Errorf("share %q: %w", tag, errNotFound)
		}
		return dir, nil
	}
	dir := filepath.Join(sharesDir, tag)
	a.mountMu.Lock()
	defer a.mountMu.Unlock()
	if a.mountedTags[tag] {
		return dir, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// A restored VM's shares are hot-plugged: a device may still be
	// probing. ENOENT/EINVAL: no such tag (yet).
	err := unix.Mount(tag, dir, "virtiofs", 0, "")
	for deadline := time.Now().Add(5 * time.Second); (errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EINVAL)) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		err = unix.Mount(tag, dir, "virtiofs", 0, "")
	}
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EINVAL) {
			return "", fmt.Errorf("mounting virtiofs share %q: %v: %w", tag, err, errNotFound)
		}
		return "", fmt.Errorf("mounting virtiofs share %q: %w", tag, err)
	}
	a.mountedTags[tag] = true
	return dir, nil
}

// mount binds a share onto a path in the container root. The bind is made
// in the agent's mount namespace on the root, which is a shared mount, so it
// propagates into the workload's (slave) copy, running or not. With Fill, an
// empty share first gets the container root's content at the target (fill).
func (a *Agent) mount(ctx context.Context, m *agentproto.MountSpec) error {
	if m == nil || m.Target == "" {
		return fmt.Errorf("mount: no target: %w", errBadRequest)
	}
	if m.Type == agentproto.MountTmpfs {
		return a.mountTmpfs(m)
	}
	if m.Type != "" {
		return fmt.Errorf("mount: unknown type %q: %w", m.Type, errBadRequest)
	}
	var src string
	var err error
	writable := true // the share may be filled (a read-only share is still written by its filling)
	if m.Disk != "" {
		src, writable, err = a.diskVolumeSource(m.Disk)
		if errors.Is(err, errNoVolumeData) { // a read-only disk never written: empty
			return a.mountTmpfs(&agentproto.MountSpec{Type: agentproto.MountTmpfs, Target: m.Target, ReadOnly: true, Size: 4096, Mode: 0o755})
		}
	} else {
		src, err = a.shareSource(m.Tag)
	}
	if err != nil {
		return fmt.Errorf("mount: %w", err)
	}
	if m.File != "" {
		return a.mountFile(src, m)
	}
	if m.Fill && writable {
		if err := a.fill(ctx, src, m.Target, m.Disk != ""); err != nil {
			return fmt.Errorf("mount: filling %q from %q: %w", m.Tag+m.Disk, m.Target, err)
		}
	}
	if err := a.root.mkdirAll(m.Target, 0o755); err != nil {
		return fmt.Errorf("mount: target %q: %w", m.Target, err)
	}
	target, err := a.root.open(m.Target, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("mount: target %q: %w", m.Target, err)
	}
	defer unix.Close(target)
	tree, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return fmt.Errorf("mount: cloning %q: %w", src, err)
	}
	defer unix.Close(tree)
	if m.ReadOnly {
		attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
		if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
			return fmt.Errorf("mount: making %q read-only: %w", src, err)
		}
	}
	if err := unix.MoveMount(tree, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("mount: attaching %q at %q: %w", src, m.Target, err)
	}
	return nil
}

// mountTmpfs mounts a new tmpfs at a path in the container root, as mount
// attaches a share (it propagates into the workload's copy).
func (a *Agent) mountTmpfs(m *agentproto.MountSpec) error {
	if !a.cfg.VM {
		return fmt.Errorf("mount: a tmpfs in host mode: %w", errNotSupported)
	}
	if m.Size < 0 || m.Mode > 0o7777 {
		return fmt.Errorf("mount: tmpfs size %d or mode %o: %w", m.Size, m.Mode, errBadRequest)
	}
	if err := a.root.mkdirAll(m.Target, 0o755); err != nil {
		return fmt.Errorf("mount: target %q: %w", m.Target, err)
	}
	target, err := a.root.open(m.Target, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("mount: target %q: %w", m.Target, err)
	}
	defer unix.Close(target)
	fsfd, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("mount: tmpfs: %w", err)
	}
	defer unix.Close(fsfd)
	if err := unix.FsconfigSetString(fsfd, "source", "tmpfs"); err != nil {
		return fmt.Errorf("mount: tmpfs: %w", err)
	}
	mode := m.Mode
	if mode == 0 {
		mode = 0o1777
	}
	if err := unix.FsconfigSetString(fsfd, "mode", strconv.FormatUint(uint64(mode), 8)); err != nil {
		return fmt.Errorf("mount: tmpfs mode %o: %w", mode, err)
	}
	if m.Size > 0 {
		if err := unix.FsconfigSetString(fsfd, "size", strconv.FormatInt(m.Size, 10)); err != nil {
			return fmt.Errorf("mount: tmpfs size %d: %w", m.Size, err)
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return fmt.Errorf("mount: creating a tmpfs: %w", err)
	}
	attr := unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV
	if m.ReadOnly {
		attr |= unix.MOUNT_ATTR_RDONLY
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, attr)
	if err != nil {
		return fmt.Errorf("mount: tmpfs: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("mount: attaching a tmpfs at %q: %w", m.Target, err)
	}
	return nil
}

// unmount detaches the mount at a path in the container root; the detach
// propagates into the workload's copy as the mount did. A path that is not a
// mount point is refused.
func (a *Agent) unmount(m *agentproto.MountSpec) error {
	if m == nil || m.Target == "" {
		return fmt.Errorf("unmount: no target: %w", errBadRequest)
	}
	target, err := a.root.open(m.Target, unix.O_PATH) // a folder, or the file of a single-file bind
	if err != nil {
		return fmt.Errorf("unmount: target %q: %w", m.Target, err)
	}
	defer unix.Close(target)
	if err := unix.Unmount(procPath(target), unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount: %q: %w", m.Target, err)
	}
	return nil
}

// touch sets the mtime (and atime) of paths inside the container root to now.
func (a *Agent) touch(paths []string) error {
	var errs []error
	for _, p := range paths {
		fd, err := a.root.open(p, unix.O_PATH)
		if err != nil {
			errs = append(errs, fmt.Errorf("touch %q: %w", p, err))
			continue
		}
		err = unix.UtimesNanoAt(unix.AT_FDCWD, procPath(fd), []unix.Timespec{{Nsec: unix.UTIME_NOW}, {Nsec: unix.UTIME_NOW}}, 0)
		unix.Close(fd)
		if err != nil {
			errs = append(errs, fmt.Errorf("touch %q: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

func (a *Agent) setTime(ns int64) error {
	if !a.cfg.VM && !a.cfg.AllowSetTime {
		return fmt.Errorf("settime: refusing to set the host's clock in host mode (start with --allow-settime): %w", errNotSupported)
	}
	ts := unix.NsecToTimespec(ns)
	if err := unix.ClockSettime(unix.CLOCK_REALTIME, &ts); err != nil {
		return fmt.Errorf("settime %s: %w", time.Unix(0, ns).UTC(), err)
	}
	return nil
}

// forward connects the stream to TCP 127.0.0.1:port in the guest and copies
// both ways; each direction's EOF is passed on as a half-close.
func (a *Agent) forward(ctx context.Context, c *agentproto.Conn, port int) error {
	if port <= 0 || port > 65535 {
		return fmt.Errorf("forward: port %d: %w", port, errBadRequest)
	}
	d := net.Dialer{Timeout: 10 * time.Second}
	tc, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("forward: %w", err)
	}
	defer tc.Close()
	if err := c.Send(agentproto.OK{}); err != nil {
		return nil
	}
	relay(c, tc.(*net.TCPConn))
	return nil
}

// halfCloser is a guest connection a stream is relayed to (TCP or unix).
type halfCloser interface {
	net.Conn
	syscall.Conn
	CloseWrite() error
}

// relay copies between the stream and tcp both ways until both are done; each direction's EOF
// is passed on as a half-close.
func relay(c *agentproto.Conn, tcp halfCloser) {
	read, write := tcp.Read, tcp.Write
	if rc, ok := nonBlocking(tcp); ok {
		read = func(b []byte) (int, error) { return rawRead(rc, b) }
		write = func(b []byte) (int, error) { return rawWrite(rc, b) }
	}
	upDone := make(chan struct{})
	go func() { // host → guest
		defer close(upDone)
		for {
			m, err := c.Recv()
			if err != nil {
				tcp.Close() // the stream is gone: abort
				return
			}
			switch v := m.(type) {
			case agentproto.Data:
				if _, err := write(v); err != nil {
					return
				}
			case agentproto.DataEOF:
				_ = tcp.CloseWrite()
				return
			default:
				tcp.Close()
				return
			}
		}
	}()
	buf := make([]byte, agentproto.HeaderSize+forwardBufMin)
	for { // guest → host
		n, err := read(buf[agentproto.HeaderSize:])
		if n > 0 {
			if c.SendRaw(agentproto.TypeData, buf[:agentproto.HeaderSize+n]) != nil {
				break
			}
			buf = growForwardBuf(buf, n)
		}
		if err != nil {
			if err == io.EOF {
				_ = c.Send(agentproto.DataEOF{})
			}
			break
		}
	}
	<-upDone
}

// Guest → host reads of a TCP forward start at forwardBufMin and grow 4x each time one fills
// the buffer, up to one whole frame: a bulk stream soon costs the guest one frame, one yamux write
// and one window step per MiB (under TCG, with the host's 16 MiB window, ~1.7x the MB per QEMU
// CPU-second of 256 KiB frames), while a quiet connection keeps a small buffer.
const forwardBufMin = 64 << 10

func growForwardBuf(buf []byte, n int) []byte {
	size := len(buf) - agentproto.HeaderSize
	if n < size || size >= agentproto.MaxFrameSize {
		return buf
	}
	return make([]byte, agentproto.HeaderSize+min(4*size, agentproto.MaxFrameSize))
}

// forwardUDP relays datagrams between the stream (one Data frame each) and
// a UDP socket connected to 127.0.0.1:port in the guest. It ends when the
// stream ends.
func (a *Agent) forwardUDP(ctx context.Context, c *agentproto.Conn, port int) error {
	if port <= 0 || port > 65535 {
		return fmt.Errorf("forward udp: port %d: %w", port, errBadRequest)
	}
	uc, err := (&net.Dialer{}).DialContext(ctx, "udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("forward udp: %w", err)
	}
	defer uc.Close()
	if err := c.Send(agentproto.OK{}); err != nil {
		return nil
	}
	go func() { // guest → host; ends when uc is closed
		buf := make([]byte, agentproto.HeaderSize+agentproto.MaxDatagram)
		for {
			n, err := uc.Read(buf[agentproto.HeaderSize:])
			if err != nil && !errors.Is(err, unix.ECONNREFUSED) {
				return
			}
			if n > 0 && c.SendRaw(agentproto.TypeData, buf[:agentproto.HeaderSize+n]) != nil {
				return
			}
		}
	}()
	for { // host → guest
		m, err := c.Recv()
		if err != nil {
			return nil
		}
		switch v := m.(type) {
		case agentproto.Data:
			_, _ = uc.Write(v) // UDP: a lost datagram is not an error
		case agentproto.DataEOF:
			return nil
		default:
			return fmt.Errorf("forward udp: unexpected %s frame: %w", m.Type(), errBadRequest)
		}
	}
}
