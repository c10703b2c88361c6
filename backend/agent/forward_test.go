//go:build linux

package agent_test

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"testing"
)

// TestForwardBulk: a guest service sends more than several whole frames; the forward carries it in
// order while its reads grow to whole frames, then passes the service's EOF on. Host mode shares
// the host's loopback, so a listener in the test stands in for the service.
func TestForwardBulk(t *testing.T) {
	a := startAgent(t)
	ctx := ctxT(t)
	blob := make([]byte, 5<<20+12345)
	rand.Read(blob)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		for b := blob; len(b) > 0; { // uneven writes: the reads see partial and full buffers
			n := min(len(b), 200<<10+len(b)%7919)
			if _, err := c.Write(b[:n]); err != nil {
				return
			}
			b = b[n:]
		}
	}()
	conn, err := a.c.Forward(ctx, l.Addr().(*net.TCPAddr).Port)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, blob) {
		t.Fatalf("got %d bytes, want the %d sent (equal: %v up to the shorter)", len(got), len(blob), bytes.HasPrefix(blob, got))
	}
}
