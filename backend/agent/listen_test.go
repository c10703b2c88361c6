//go:build linux

package agent_test

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestListenUnix: the agent makes a unix socket in the container root (replacing a file there);
// a process in the container connects to it, the host's Accept gets that connection over a
// stream, and bytes go both ways with EOF passed on. Closing the listener removes the socket.
func TestListenUnix(t *testing.T) {
	a := startAgent(t)
	ctx := ctxT(t)
	if err := os.MkdirAll(filepath.Join(a.root, "var/run"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(a.root, "var/run/docker.sock"), []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := a.c.ListenUnix(ctx, "/var/run/docker.sock")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(a.root, "var/run/docker.sock")
	if fi, err := os.Stat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("no socket at the target: %v %v", fi, err)
	}
	served := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		got, err := io.ReadAll(c) // until the guest side half-closes
		if err != nil {
			served <- err
			return
		}
		_, err = c.Write([]byte("host got: " + string(got)))
		served <- err
	}()
	// The guest side, as a process in the container would: connect, send, half-close, read.
	uc, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	if _, err := uc.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if err := uc.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	reply, err := io.ReadAll(uc)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if string(reply) != "host got: ping" {
		t.Fatalf("reply %q", reply)
	}
	l.Close()
	deadline := ctxT(t)
	for {
		if _, err := os.Lstat(sock); os.IsNotExist(err) {
			break
		}
		select {
		case <-deadline.Done():
			t.Fatal("the socket stayed after the listener closed")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if _, err := a.c.ListenUnix(ctx, "relative/x.sock"); err == nil {
		t.Fatal("a relative path was accepted")
	}
}
