package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeGuest stands in for the agent: each dial is one flow, answered by an echo that names it.
type fakeGuest struct {
	mu     sync.Mutex
	dials  int
	closed []int // flow numbers whose stream the host closed
}

func (g *fakeGuest) dial(ctx context.Context) (net.Conn, error) {
	g.mu.Lock()
	g.dials++
	n := g.dials
	g.mu.Unlock()
	host, guest := net.Pipe()
	go func() {
		buf := make([]byte, 65536)
		for {
			k, err := guest.Read(buf) // net.Pipe: one Write is one Read when the buffer is large enough
			if err != nil {
				g.mu.Lock()
				g.closed = append(g.closed, n)
				g.mu.Unlock()
				return
			}
			if _, err := guest.Write([]byte(fmt.Sprintf("flow %d: %s", n, buf[:k]))); err != nil {
				return
			}
		}
	}()
	return host, nil
}

func (g *fakeGuest) counts() (int, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.dials, len(g.closed)
}

// lastActive is the last activity of cl's flow.
func (tab *udpFlows) lastActive(t *testing.T, cl net.Conn) time.Time {
	t.Helper()
	tab.mu.Lock()
	defer tab.mu.Unlock()
	f := tab.flows[netip.MustParseAddrPort(cl.LocalAddr().String())]
	if f == nil {
		t.Fatalf("no flow for %s", cl.LocalAddr())
	}
	return f.idleSince()
}

// exchange sends msg from cl and returns the reply.
func exchange(t *testing.T, cl net.Conn, msg string) string {
	t.Helper()
	if _, err := cl.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	cl.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1024)
	n, err := cl.Read(buf)
	if err != nil {
		t.Fatalf("reply to %q: %v", msg, err)
	}
	return string(buf[:n])
}

// TestUDPFlowTable: one flow per client address, replies to the right client, idle flows expire
// (and a later datagram opens a new one), close ends everything.
func TestUDPFlowTable(t *testing.T) {
	l, err := listenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	g := &fakeGuest{}
	tab := newUDPFlows(context.Background(), l.pc, g.dial, time.Minute)
	served := make(chan struct{})
	go func() { tab.serve(); close(served) }()

	a, err := net.Dial("udp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := net.Dial("udp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := exchange(t, a, "a1"); got != "flow 1: a1" {
		t.Errorf("a1: %q", got)
	}
	if got := exchange(t, b, "b1"); got != "flow 2: b1" {
		t.Errorf("b1: %q", got)
	}
	if got := exchange(t, a, "a2"); got != "flow 1: a2" {
		t.Errorf("a2: %q", got)
	}
	if dials, _ := g.counts(); dials != 2 || tab.len() != 2 {
		t.Fatalf("%d dials, %d flows; want 2 and 2", dials, tab.len())
	}

	// Not idle yet: nothing expires. b is busier than a.
	time.Sleep(10 * time.Millisecond)
	if got := exchange(t, b, "b2"); got != "flow 2: b2" {
		t.Errorf("b2: %q", got)
	}
	lastA, lastB := tab.lastActive(t, a), tab.lastActive(t, b)
	if !lastB.After(lastA) {
		t.Fatalf("b's last activity %v is not after a's %v", lastB, lastA)
	}
	if n := tab.expire(lastB.Add(30 * time.Second)); n != 0 {
		t.Errorf("expired %d flows after 30 s of a 1 min timeout", n)
	}
	// A minute after a's last reply (which counts as activity) but not yet after b's: only a goes.
	if n := tab.expire(lastA.Add(time.Minute)); n != 1 || tab.len() != 1 {
		t.Errorf("expired %d, %d left; want a's flow only", n, tab.len())
	}
	if n := tab.expire(lastB.Add(time.Minute)); n != 1 || tab.len() != 0 {
		t.Errorf("expired %d, %d left; want b's flow", n, tab.len())
	}
	eventually(t, 10*time.Second, "the expired flows' streams to close", func() bool {
		_, closed := g.counts()
		return closed == 2
	})

	// A new datagram from an expired client opens a new flow.
	if got := exchange(t, a, "a3"); got != "flow 3: a3" {
		t.Errorf("a3 after expiry: %q", got)
	}
	l.Close()
	<-served
	tab.close()
	if dials, _ := g.counts(); dials != 3 || tab.len() != 0 {
		t.Errorf("after close: %d dials, %d flows; want 3 and 0", dials, tab.len())
	}
	eventually(t, 10*time.Second, "close to end the last stream", func() bool {
		_, closed := g.counts()
		return closed == 3
	})
	if f := tab.flow(netip.MustParseAddrPort(a.LocalAddr().String()), time.Now()); f != nil {
		t.Error("a closed table opened a flow")
	}
}

// TestUDPFlowDialFailure: a flow whose stream cannot open goes away, and the next datagram retries.
func TestUDPFlowDialFailure(t *testing.T) {
	l, err := listenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	g := &fakeGuest{}
	var mu sync.Mutex
	failing := true
	dial := func(ctx context.Context) (net.Conn, error) {
		mu.Lock()
		defer mu.Unlock()
		if failing {
			return nil, ErrNotRunning
		}
		return g.dial(ctx)
	}
	tab := newUDPFlows(context.Background(), l.pc, dial, time.Minute)
	errs := make(chan error, 10)
	tab.onError = func(_ netip.AddrPort, err error) { errs <- err }
	go tab.serve()
	defer tab.close()
	a, _ := net.Dial("udp", l.Addr().String())
	defer a.Close()
	a.Write([]byte("lost"))
	if err := <-errs; !errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), a.LocalAddr().String()) {
		t.Errorf("dial failure reported as %v", err)
	}
	eventually(t, 10*time.Second, "the failed flow to go", func() bool { return tab.len() == 0 })
	mu.Lock()
	failing = false
	mu.Unlock()
	if got := exchange(t, a, "again"); got != "flow 1: again" {
		t.Errorf("after a failed dial: %q", got)
	}
}

func TestListenPortsUDP(t *testing.T) {
	taken, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	free := freeTCPPort(t)
	_, _, err = listenPorts([]PortMapping{
		{HostIP: "127.0.0.1", HostPort: free, ContainerPort: 80, Proto: "tcp"},
		{HostIP: "127.0.0.1", HostPort: taken.LocalAddr().(*net.UDPAddr).Port, ContainerPort: 53, Proto: "udp"},
	})
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "53/udp") {
		t.Fatalf("taken UDP port: %v, want ErrConflict naming 53/udp", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(free)))
	if err != nil {
		t.Fatalf("the TCP port was not released after the UDP one failed: %v", err)
	}
	ln.Close()
	// The same host port for TCP and UDP, and port 0.
	lns, bound, err := listenPorts([]PortMapping{
		{HostIP: "127.0.0.1", HostPort: free, ContainerPort: 53, Proto: "tcp"},
		{HostIP: "127.0.0.1", HostPort: free, ContainerPort: 53, Proto: "udp"},
		{HostIP: "127.0.0.1", ContainerPort: 54, Proto: "udp"},
	})
	if err != nil || bound[1].HostPort != free || bound[2].HostPort == 0 {
		t.Fatalf("tcp+udp on one port and udp port 0: %+v %v", bound, err)
	}
	for _, l := range lns {
		l.Close()
	}
	pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(bound[2].HostPort)))
	if err != nil {
		t.Fatalf("the UDP port stayed bound after Close: %v", err)
	}
	pc.Close()
	if err := validatePorts([]PortMapping{{HostPort: free, ContainerPort: 53}, {HostPort: free, ContainerPort: 53, Proto: "udp"}}, "127.0.0.1"); err != nil {
		t.Errorf("53/tcp and 53/udp on one host port: %v", err)
	}
	if err := validatePorts([]PortMapping{{HostPort: taken.LocalAddr().(*net.UDPAddr).Port, ContainerPort: 53, Proto: "udp"}}, "127.0.0.1"); !errors.Is(err, ErrConflict) {
		t.Errorf("validate a taken UDP port: %v, want ErrConflict", err)
	}
}
