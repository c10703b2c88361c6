package agentproto

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"sync"
)

// Conn carries frames over one stream. Send and SendRaw may be called from
// several goroutines; Recv from one goroutine at a time.
type Conn struct {
	net.Conn
	wmu  sync.Mutex // guards writes to Conn
	br   *bufio.Reader
	rbuf []byte // reused payload buffer of Recv
}

// NewConn wraps a stream.
func NewConn(c net.Conn) *Conn {
	return &Conn{Conn: c, br: bufio.NewReaderSize(c, 64<<10), rbuf: make([]byte, 64<<10)}
}

// Send encodes m and writes it as one frame.
func (c *Conn) Send(m Message) error {
	p, err := Encode(m)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", m.Type(), err)
	}
	if len(p) > MaxFrameSize {
		return fmt.Errorf("sending %s of %d bytes: %w", m.Type(), len(p), ErrFrameTooLarge)
	}
	buf := make([]byte, HeaderSize+len(p))
	PutHeader(buf, m.Type(), len(p))
	copy(buf[HeaderSize:], p)
	return c.write(buf)
}

// SendRaw writes a frame whose payload already sits in buf[HeaderSize:]; it
// fills in the header. This is the zero-copy path for stdio and data.
func (c *Conn) SendRaw(t Type, buf []byte) error {
	n := len(buf) - HeaderSize
	if n < 0 || n > MaxFrameSize {
		return fmt.Errorf("sending %s of %d bytes: %w", t, n, ErrFrameTooLarge)
	}
	PutHeader(buf, t, n)
	return c.write(buf)
}

// SendBytes writes p as frames of type t, splitting at MaxFrameSize.
func (c *Conn) SendBytes(t Type, p []byte) error {
	for len(p) > 0 {
		n := min(len(p), MaxFrameSize)
		buf := make([]byte, HeaderSize+n)
		copy(buf[HeaderSize:], p[:n])
		if err := c.SendRaw(t, buf); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

func (c *Conn) write(buf []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.Conn.Write(buf)
	return err
}

// Recv reads and decodes the next frame. Raw messages (Stdout, Data, ...)
// alias an internal buffer that the next Recv reuses.
func (c *Conn) Recv() (Message, error) {
	f, err := ReadFrame(c.br, c.rbuf)
	if err != nil {
		return nil, err
	}
	if cap(f.Payload) > cap(c.rbuf) {
		c.rbuf = f.Payload[:cap(f.Payload)]
	}
	return Decode(f)
}

// ServerHello reads the host's hello and answers with the agent's. It
// returns a *VersionError (after telling the host) when the versions differ.
func ServerHello(c *Conn, info Info) error {
	m, err := c.Recv()
	if err != nil {
		if err == io.EOF {
			return err
		}
		_ = c.Send(ErrorMessage(fmt.Errorf("reading hello: %w: %v", ErrBadRequest, err)))
		return fmt.Errorf("reading hello: %w", err)
	}
	h, ok := m.(Hello)
	if !ok {
		err := fmt.Errorf("first frame is %s, want hello: %w", m.Type(), ErrBadRequest)
		_ = c.Send(ErrorMessage(err))
		return err
	}
	info.ProtocolVersion = ProtocolVersion
	if err := c.Send(Hello{ProtocolVersion: ProtocolVersion, Info: &info}); err != nil {
		return fmt.Errorf("sending hello: %w", err)
	}
	if h.ProtocolVersion != ProtocolVersion {
		err := &VersionError{Host: h.ProtocolVersion, Agent: ProtocolVersion}
		_ = c.Send(ErrorMessage(err))
		return err
	}
	return nil
}
