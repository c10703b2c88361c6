package qemu

import (
	"context"
	"io"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/shmring"
	"github.com/skiff-containers/skiff/backend/vm"
)

// An agent that took the ring serves right after its first line: the machine is ready on that line,
// with no ping round trip before its first stream. Here the agent starts serving only once the host
// has dialed, which a ping would have waited for in vain.
func TestReadyOnTheAgentsRingLine(t *testing.T) {
	host, guestFile, err := socketPair("agent")
	if err != nil {
		t.Fatal(err)
	}
	guest, err := net.FileConn(guestFile)
	guestFile.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer guest.Close()
	mem, err := unix.Mmap(-1, 0, ringSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	m := &qemuMachine{spec: vm.MachineSpec{ID: "ready"}, log: zap.NewNop(), cmd: &exec.Cmd{}, agentConn: host,
		ready: make(chan struct{}), done: make(chan struct{}), changed: make(chan struct{}), state: vm.StateRunning}
	defer func() {
		m.closeChannel()
		unix.Munmap(mem)
	}()
	go m.connect(mem)
	if _, err := io.WriteString(guest, agentproto.RingOK+"\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.ready:
	case <-time.After(10 * time.Second):
		t.Fatal("the machine is not ready 10 s after the agent's ring line")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := m.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := io.WriteString(s, "hello"); err != nil {
		t.Fatal(err)
	}

	// The agent's side, as channelOn and Serve run it.
	ring, err := shmring.New(mem, shmring.Guest, guest, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := yamux.Server(ring, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go func() {
		c, err := srv.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b := make([]byte, 5)
		if _, err := io.ReadFull(c, b); err == nil {
			_, _ = c.Write(append([]byte("re: "), b...))
		}
	}()
	_ = s.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, 9)
	if _, err := io.ReadFull(s, got); err != nil || string(got) != "re: hello" {
		t.Fatalf("the first stream, opened before the agent served: %q, %v", got, err)
	}
}
