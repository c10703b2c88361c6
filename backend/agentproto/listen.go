package agentproto

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"
)

// acceptTimeout bounds picking up one accepted connection (its OpAccept stream).
const acceptTimeout = 30 * time.Second

// ListenUnix has the agent make a unix socket at path in the container root (replacing what is
// there) and returns a listener whose Accept gives each connection made to it, carried over its
// own stream (OpAccept). The socket goes when the listener is closed or the channel ends.
func (c *Client) ListenUnix(ctx context.Context, path string) (net.Listener, error) {
	if path == "" {
		return nil, fmt.Errorf("agent listen: no path: %w", ErrMalformed)
	}
	conn, _, _, err := c.open(ctx, Request{Op: OpListen, Path: path})
	if err != nil {
		return nil, err
	}
	return &unixListener{client: c, conn: conn, path: path}, nil
}

type unixListener struct {
	client *Client
	conn   *Conn
	path   string
	mu     sync.Mutex // serialises Accept's reads of the listen stream
}

// Accept waits for the next connection to the socket in the guest and opens its stream.
func (l *unixListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	m, err := l.conn.Recv()
	l.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("agent listen %s: %w", l.path, eofToClosed(err))
	}
	switch v := m.(type) {
	case OK:
		ctx, cancel := context.WithTimeout(context.Background(), acceptTimeout)
		defer cancel()
		conn, _, _, err := l.client.open(ctx, Request{Op: OpAccept, Conn: v.Conn})
		if err != nil {
			return nil, err
		}
		return newForwardConn(conn), nil
	case Error:
		return nil, &RemoteError{Op: OpListen, Code: v.Code, Message: v.Message}
	default:
		return nil, fmt.Errorf("agent listen: unexpected %s frame: %w", m.Type(), ErrMalformed)
	}
}

func (l *unixListener) Close() error { return l.conn.Close() }

func (l *unixListener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

// Top lists the processes of the workload's PID namespace (ErrNotRunning without a workload).
func (c *Client) Top(ctx context.Context) ([]Proc, error) {
	_, ok, err := c.call(ctx, Request{Op: OpTop})
	return ok.Procs, err
}
