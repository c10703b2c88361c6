package agentproto

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Client talks to one agent. It opens a new stream (through dial) for every
// operation, so it is safe for concurrent use and holds no connection.
type Client struct {
	dial func(ctx context.Context) (net.Conn, error)
}

// NewClient returns a client that opens streams with dial: a vsock
// connection, a yamux stream, or a unix socket connection.
func NewClient(dial func(ctx context.Context) (net.Conn, error)) *Client {
	return &Client{dial: dial}
}

// open dials a stream, says hello, sends req and reads the answer. ctx
// bounds all of that; the returned stream has no deadline.
func (c *Client) open(ctx context.Context, req Request) (*Conn, *Info, OK, error) {
	nc, err := c.dial(ctx)
	if err != nil {
		return nil, nil, OK{}, fmt.Errorf("agent %s: dialing: %w", req.Op, err)
	}
	conn := NewConn(nc)
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	info, ok, err := handshake(conn, req)
	if !stop() || ctx.Err() != nil {
		if err == nil || isTimeout(err) {
			err = ctx.Err()
		}
	}
	if err != nil {
		nc.Close()
		return nil, nil, OK{}, err
	}
	_ = nc.SetDeadline(time.Time{})
	return conn, info, ok, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func handshake(conn *Conn, req Request) (*Info, OK, error) {
	// Hello and request go out in one write: one round trip per operation.
	h, _ := Encode(Hello{ProtocolVersion: ProtocolVersion})
	r, err := Encode(req)
	if err != nil {
		return nil, OK{}, fmt.Errorf("agent %s: encoding request: %w", req.Op, err)
	}
	buf := make([]byte, 2*HeaderSize+len(h)+len(r))
	PutHeader(buf, TypeHello, len(h))
	copy(buf[HeaderSize:], h)
	PutHeader(buf[HeaderSize+len(h):], TypeRequest, len(r))
	copy(buf[2*HeaderSize+len(h):], r)
	if err := conn.write(buf); err != nil {
		return nil, OK{}, fmt.Errorf("agent %s: sending request: %w", req.Op, err)
	}
	m, err := conn.Recv()
	if err != nil {
		return nil, OK{}, fmt.Errorf("agent %s: reading hello: %w", req.Op, eofToClosed(err))
	}
	var info *Info
	switch v := m.(type) {
	case Hello:
		if v.ProtocolVersion != ProtocolVersion {
			return nil, OK{}, &VersionError{Host: ProtocolVersion, Agent: v.ProtocolVersion}
		}
		info = v.Info
	case Error:
		return nil, OK{}, &RemoteError{Op: req.Op, Code: v.Code, Message: v.Message}
	default:
		return nil, OK{}, fmt.Errorf("agent %s: got %s before hello: %w", req.Op, m.Type(), ErrMalformed)
	}
	m, err = conn.Recv()
	if err != nil {
		return nil, OK{}, fmt.Errorf("agent %s: reading reply: %w", req.Op, eofToClosed(err))
	}
	switch v := m.(type) {
	case OK:
		return info, v, nil
	case Error:
		return nil, OK{}, &RemoteError{Op: req.Op, Code: v.Code, Message: v.Message}
	default:
		return nil, OK{}, fmt.Errorf("agent %s: got %s instead of a reply: %w", req.Op, m.Type(), ErrMalformed)
	}
}

func eofToClosed(err error) error {
	if errors.Is(err, io.EOF) {
		return ErrStreamClosed
	}
	return err
}

// call runs a request whose whole answer is OK or Error.
func (c *Client) call(ctx context.Context, req Request) (*Info, OK, error) {
	conn, info, ok, err := c.open(ctx, req)
	if err != nil {
		return nil, OK{}, err
	}
	conn.Close()
	return info, ok, nil
}

// Hello checks that the agent answers and speaks this protocol version
// (otherwise a *VersionError naming both), and returns its Info.
func (c *Client) Hello(ctx context.Context) (*Info, error) {
	info, ok, err := c.call(ctx, Request{Op: OpInfo})
	if err != nil {
		return nil, err
	}
	if ok.Info != nil {
		return ok.Info, nil
	}
	return info, nil
}

// Run starts the workload. There is one workload at a time; a second Run
// while it runs fails with ErrAlreadyRunning.
func (c *Client) Run(ctx context.Context, spec ProcessSpec) (*Process, error) {
	return c.process(ctx, Request{Op: OpRun, Process: &spec})
}

// Exec starts a process that joins the workload's namespaces and root. A
// missing command fails with an error wrapping ErrCommandNotFound, one that
// cannot be executed with ErrCommandNotExecutable.
func (c *Client) Exec(ctx context.Context, spec ProcessSpec) (*Process, error) {
	return c.process(ctx, Request{Op: OpExec, Process: &spec})
}

func (c *Client) process(ctx context.Context, req Request) (*Process, error) {
	conn, _, ok, err := c.open(ctx, req)
	if err != nil {
		return nil, err
	}
	return newProcess(conn, ok.PID, req.Op), nil
}

// Signal sends sig to the workload (PID 1 of its namespace).
func (c *Client) Signal(ctx context.Context, sig int) error {
	_, _, err := c.call(ctx, Request{Op: OpSignal, Signal: sig})
	return err
}

// Forward opens a TCP connection to 127.0.0.1:port in the guest. The
// returned conn supports CloseWrite (half-close).
func (c *Client) Forward(ctx context.Context, port int) (net.Conn, error) {
	if port <= 0 || port > 65535 {
		return nil, fmt.Errorf("forwarding port %d: %w", port, ErrBadRequest)
	}
	conn, _, _, err := c.open(ctx, Request{Op: OpForward, Port: port})
	if err != nil {
		return nil, err
	}
	return newForwardConn(conn), nil
}

// ForwardUDP relays datagrams to UDP 127.0.0.1:port in the guest: each
// Write sends one datagram (at most 65507 bytes), each Read returns one
// reply (cut to the buffer, as with UDP).
func (c *Client) ForwardUDP(ctx context.Context, port int) (net.Conn, error) {
	if port <= 0 || port > 65535 {
		return nil, fmt.Errorf("forwarding udp port %d: %w", port, ErrBadRequest)
	}
	conn, _, _, err := c.open(ctx, Request{Op: OpForward, Port: port, Proto: "udp"})
	if err != nil {
		return nil, err
	}
	return &datagramConn{newForwardConn(conn)}, nil
}

// Mount mounts a share into the container root.
func (c *Client) Mount(ctx context.Context, m MountSpec) error {
	_, _, err := c.call(ctx, Request{Op: OpMount, Mount: &m})
	return err
}

// Unmount detaches the mount at target inside the container root (the workload's view too).
func (c *Client) Unmount(ctx context.Context, target string) error {
	_, _, err := c.call(ctx, Request{Op: OpUnmount, Mount: &MountSpec{Target: target}})
	return err
}

// SetTime sets the guest clock.
func (c *Client) SetTime(ctx context.Context, t time.Time) error {
	_, _, err := c.call(ctx, Request{Op: OpSetTime, Time: t.UnixNano()})
	return err
}

// Stats reads the workload's resource figures.
func (c *Client) Stats(ctx context.Context) (*Stats, error) {
	_, ok, err := c.call(ctx, Request{Op: OpStats})
	if err != nil {
		return nil, err
	}
	if ok.Stats == nil {
		return nil, fmt.Errorf("agent stats: reply without stats: %w", ErrMalformed)
	}
	return ok.Stats, nil
}

// Touch bumps the mtime of paths inside the container root, so watchers in
// the container see host-side edits.
func (c *Client) Touch(ctx context.Context, paths []string) error {
	_, _, err := c.call(ctx, Request{Op: OpTouch, Paths: paths})
	return err
}

// Shutdown stops the workload, syncs and powers the guest off (in host mode:
// stops the agent).
func (c *Client) Shutdown(ctx context.Context) error {
	_, _, err := c.call(ctx, Request{Op: OpShutdown})
	return err
}
