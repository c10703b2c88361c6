//go:build linux

package agent

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"golang.org/x/sys/unix"
)

// sockTable holds the connections accepted on OpListen sockets until their OpAccept stream
// takes them.
type sockTable struct {
	mu      sync.Mutex
	next    uint64
	pending map[uint64]*net.UnixConn
}

func (t *sockTable) put(uc *net.UnixConn) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pending == nil {
		t.pending = map[uint64]*net.UnixConn{}
	}
	t.next++
	t.pending[t.next] = uc
	return t.next
}

func (t *sockTable) take(id uint64) *net.UnixConn {
	t.mu.Lock()
	defer t.mu.Unlock()
	uc := t.pending[id]
	delete(t.pending, id)
	return uc
}

// listen makes a unix socket at path in the container root (what was there goes) and, while the
// stream lasts, tells the host of each connection to it (OK{Conn}); the host picks each up with
// OpAccept. The socket is removed when the stream ends.
func (a *Agent) listen(ctx context.Context, c *agentproto.Conn, path string) error {
	if path == "" || !filepath.IsAbs(path) || filepath.Clean(path) == "/" {
		return fmt.Errorf("listen: path %q: want an absolute path in the container: %w", path, errBadRequest)
	}
	path = filepath.Clean(path)
	dir, base := filepath.Dir(path), filepath.Base(path)
	if err := a.root.mkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("listen: %q: %w", dir, err)
	}
	dfd, err := a.root.open(dir, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("listen: %q: %w", dir, err)
	}
	defer unix.Close(dfd)
	// A bind mount target replaces what the image has there (a file, or a stale socket).
	if err := unix.Unlinkat(dfd, base, 0); err != nil && err != unix.ENOENT {
		return fmt.Errorf("listen: replacing %q: %w", path, err)
	}
	// Bound through the directory's descriptor: a symbolic link in the container cannot move the
	// socket out of its root.
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: procPath(dfd) + "/" + base, Net: "unix"})
	if err != nil {
		return fmt.Errorf("listen: %q: %w", path, err)
	}
	l.SetUnlinkOnClose(false)
	defer func() { _ = unix.Unlinkat(dfd, base, 0) }()
	defer l.Close()
	if err := unix.Fchmodat(dfd, base, 0o660, 0); err != nil {
		return fmt.Errorf("listen: %q: %w", path, err)
	}
	if err := c.Send(agentproto.OK{}); err != nil {
		return nil
	}
	mine := map[uint64]bool{}
	defer func() { // connections the host never picked up
		for id := range mine {
			if uc := a.socks.take(id); uc != nil {
				uc.Close()
			}
		}
	}()
	gone := make(chan struct{})
	go func() { // the host closes the stream (or the channel ends): stop
		defer close(gone)
		for {
			if _, err := c.Recv(); err != nil {
				l.Close()
				return
			}
		}
	}()
	for {
		uc, err := l.AcceptUnix()
		if err != nil {
			select {
			case <-gone:
				return nil
			case <-ctx.Done():
				return nil
			default:
			}
			return fmt.Errorf("listen: %q: %w", path, err)
		}
		id := a.socks.put(uc)
		mine[id] = true
		if err := c.Send(agentproto.OK{Conn: id}); err != nil {
			return nil
		}
	}
}

// accept relays the connection id, accepted by a listen stream, over this stream.
func (a *Agent) accept(c *agentproto.Conn, id uint64) error {
	uc := a.socks.take(id)
	if uc == nil {
		return fmt.Errorf("accept: no pending connection %d: %w", id, agentproto.ErrNotFound)
	}
	defer uc.Close()
	if err := c.Send(agentproto.OK{}); err != nil {
		return nil
	}
	relay(c, uc)
	return nil
}
