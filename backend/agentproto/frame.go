// Package agentproto is the wire protocol between the Skiff host and the guest
// agent, and the host-side client that speaks it.
//
// Every operation runs on its own stream (a vsock connection, a yamux stream
// over virtio-serial, or a unix socket connection in tests). A stream carries
// frames: a big-endian uint32 payload length, a one-byte message type and the
// payload. Control messages are JSON; stdio and forwarded data travel raw.
//
// Each stream opens with a hello exchange (both sides state ProtocolVersion;
// a mismatch is refused with a *VersionError naming both), then one Request,
// answered by OK or Error, then operation-specific frames.
//
//	c := agentproto.NewClient(func(ctx context.Context) (net.Conn, error) {
//		return (&net.Dialer{}).DialContext(ctx, "unix", "/run/agent.sock")
//	})
//	p, err := c.Exec(ctx, agentproto.ProcessSpec{Args: []string{"ls", "/"}})
//	...
//	st, err := p.Wait()
package agentproto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ProtocolVersion is the version of this wire protocol. Host and agent must
// agree exactly.
const ProtocolVersion = 1

// MaxFrameSize is the largest payload a frame may carry, in bytes.
const MaxFrameSize = 1 << 20

// HeaderSize is the size of a frame header: 4 bytes length, 1 byte type.
const HeaderSize = 5

// Type identifies the message a frame carries.
type Type uint8

// Message types. Raw-payload types (Stdin, Stdout, Stderr, Data) carry bytes;
// the EOF types carry nothing; all others carry JSON.
const (
	TypeHello    Type = 1  // Hello, both directions, first frame of every stream
	TypeRequest  Type = 2  // Request, host → agent, once per stream
	TypeOK       Type = 3  // OK, agent → host: the request succeeded
	TypeError    Type = 4  // Error, agent → host: the request (or stream) failed
	TypeStdin    Type = 5  // raw bytes, host → agent
	TypeStdinEOF Type = 6  // no payload, host → agent
	TypeStdout   Type = 7  // raw bytes, agent → host
	TypeStderr   Type = 8  // raw bytes, agent → host
	TypeResize   Type = 9  // Resize, host → agent
	TypeSignal   Type = 10 // Signal, host → agent
	TypeExit     Type = 11 // ExitStatus, agent → host, last frame of a process stream
	TypeData     Type = 12 // raw bytes, both directions (port forward)
	TypeDataEOF  Type = 13 // no payload, both directions: half-close
	maxType           = TypeDataEOF
)

var typeNames = [...]string{"invalid", "hello", "request", "ok", "error", "stdin", "stdin-eof",
	"stdout", "stderr", "resize", "signal", "exit", "data", "data-eof"}

func (t Type) String() string {
	if t == 0 || t > maxType {
		return fmt.Sprintf("type(%d)", uint8(t))
	}
	return typeNames[t]
}

// Frame errors.
var (
	ErrFrameTooLarge = errors.New("agentproto: frame larger than MaxFrameSize")
	ErrUnknownType   = errors.New("agentproto: unknown frame type")
	ErrMalformed     = errors.New("agentproto: malformed message")
)

// Frame is one decoded frame. Payload may alias the reader's buffer (see ReadFrame).
type Frame struct {
	Type    Type
	Payload []byte
}

// WriteFrame writes one frame. It refuses payloads over MaxFrameSize.
func WriteFrame(w io.Writer, t Type, payload []byte) error {
	if len(payload) > MaxFrameSize {
		return fmt.Errorf("writing %s frame of %d bytes: %w", t, len(payload), ErrFrameTooLarge)
	}
	buf := make([]byte, HeaderSize+len(payload))
	PutHeader(buf, t, len(payload))
	copy(buf[HeaderSize:], payload)
	_, err := w.Write(buf)
	return err
}

// PutHeader fills buf[:HeaderSize] with a header for a payload of n bytes, so
// callers can read data into buf[HeaderSize:] and write the frame in one call.
func PutHeader(buf []byte, t Type, n int) {
	binary.BigEndian.PutUint32(buf, uint32(n))
	buf[4] = byte(t)
}

// ReadFrame reads one frame. The payload is read into buf when it fits (buf
// may be nil); otherwise a new slice is allocated, never larger than
// MaxFrameSize: the length is checked before anything is allocated. A frame
// with an unknown type or an oversized length is an error, and the stream
// should be treated as unusable afterwards.
func ReadFrame(r io.Reader, buf []byte) (Frame, error) {
	var hdr [HeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return Frame{}, fmt.Errorf("reading frame header: %w", err)
		}
		return Frame{}, err
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	t := Type(hdr[4])
	if n > MaxFrameSize {
		return Frame{}, fmt.Errorf("%s frame declares %d bytes: %w", t, n, ErrFrameTooLarge)
	}
	if t == 0 || t > maxType {
		return Frame{}, fmt.Errorf("frame type %d: %w", hdr[4], ErrUnknownType)
	}
	var p []byte
	if int(n) <= cap(buf) {
		p = buf[:n]
	} else {
		p = make([]byte, n)
	}
	if _, err := io.ReadFull(r, p); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, fmt.Errorf("reading %s frame payload: %w", t, err)
	}
	return Frame{Type: t, Payload: p}, nil
}
