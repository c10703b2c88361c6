package agentproto

import (
	"fmt"
	"io"
	"net"
	"sync"
)

// forwardConn is a port-forward stream seen as a net.Conn: Data frames both
// ways, DataEOF for half-close.
type forwardConn struct {
	*Conn
	rmu     sync.Mutex // guards rest and eof (Read)
	rest    []byte
	eof     bool
	wmu     sync.Mutex // guards wclosed
	wclosed bool
}

var _ net.Conn = (*forwardConn)(nil)

func newForwardConn(c *Conn) *forwardConn { return &forwardConn{Conn: c} }

func (f *forwardConn) Read(b []byte) (int, error) {
	f.rmu.Lock()
	defer f.rmu.Unlock()
	for len(f.rest) == 0 {
		if f.eof {
			return 0, io.EOF
		}
		m, err := f.Conn.Recv()
		if err != nil {
			return 0, err
		}
		switch v := m.(type) {
		case Data:
			f.rest = v
		case DataEOF:
			f.eof = true
		case Error:
			return 0, &RemoteError{Op: OpForward, Code: v.Code, Message: v.Message}
		default:
			return 0, fmt.Errorf("agent forward: unexpected %s frame: %w", m.Type(), ErrMalformed)
		}
	}
	n := copy(b, f.rest)
	f.rest = f.rest[n:]
	return n, nil
}

func (f *forwardConn) Write(b []byte) (int, error) {
	if err := f.Conn.SendBytes(TypeData, b); err != nil {
		return 0, err
	}
	return len(b), nil
}

// CloseWrite half-closes: the guest side sees EOF, reading goes on.
func (f *forwardConn) CloseWrite() error {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	if f.wclosed {
		return nil
	}
	f.wclosed = true
	return f.Conn.Send(DataEOF{})
}

// MaxDatagram is the largest UDP payload a datagram forward carries.
const MaxDatagram = 65507

// datagramConn keeps datagram boundaries: one Data frame per datagram.
type datagramConn struct{ *forwardConn }

func (d *datagramConn) Read(b []byte) (int, error) {
	d.rmu.Lock()
	defer d.rmu.Unlock()
	if d.eof {
		return 0, io.EOF
	}
	for {
		m, err := d.Conn.Recv()
		if err != nil {
			return 0, err
		}
		switch v := m.(type) {
		case Data:
			return copy(b, v), nil // the rest of a long datagram is dropped, as UDP does
		case DataEOF:
			d.eof = true
			return 0, io.EOF
		case Error:
			return 0, &RemoteError{Op: OpForward, Code: v.Code, Message: v.Message}
		default:
			return 0, fmt.Errorf("agent forward: unexpected %s frame: %w", m.Type(), ErrMalformed)
		}
	}
}

func (d *datagramConn) Write(b []byte) (int, error) {
	if len(b) > MaxDatagram {
		return 0, fmt.Errorf("datagram of %d bytes: %w", len(b), ErrFrameTooLarge)
	}
	if err := d.Conn.SendBytes(TypeData, b); err != nil {
		return 0, err
	}
	return len(b), nil
}
