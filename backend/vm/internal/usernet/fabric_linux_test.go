package usernet

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

// member starts a network on f for name and a guest on it.
func member(t *testing.T, f *Fabric, name string) (*Network, *guest) {
	t.Helper()
	cfg := testConfig()
	cfg.Fabric, cfg.Member, cfg.Guest = f, name, netip.MustParseAddr("10.0.2.15")
	cfg.HostLoopback = netip.MustParseAddr("10.0.2.254")
	cfg.Names["host.docker.internal"] = cfg.HostLoopback
	ours, theirs, err := socketPair()
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(cfg, ours)
	if err != nil {
		t.Fatal(err)
	}
	g := newGuest(t, theirs)
	t.Cleanup(func() { g.close(); n.Close() })
	return n, g
}

// serve answers each connection to port of g's stack with the remote
// address it came from.
func (g *guest) serve(t *testing.T, port uint16) {
	t.Helper()
	l, err := gonet.ListenTCP(g.s, tcpip.FullAddress{NIC: 1, Port: port}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, c.RemoteAddr().(*net.TCPAddr).IP.String())
			c.Close()
		}
	}()
}

func readAll(t *testing.T, g *guest, to netip.AddrPort) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := g.dial(ctx, to)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err
}

// Members of one segment resolve each other by name and alias and connect
// (the peer sees the caller's segment address); a member of another
// segment resolves nothing and is refused; a member's names go when its VM
// stops; host.docker.internal reaches the host's loopback.
func TestFabric(t *testing.T) {
	f := NewFabric()
	subA, subB := netip.MustParsePrefix("172.18.0.0/16"), netip.MustParsePrefix("172.19.0.0/16")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(f.Attach("web", Endpoint{Segment: "a", Subnet: subA, Addr: netip.MustParseAddr("172.18.0.2"), Names: []string{"web", "www"}}))
	must(f.Attach("cli", Endpoint{Segment: "a", Subnet: subA, Addr: netip.MustParseAddr("172.18.0.3"), Names: []string{"cli"}}))
	must(f.Attach("other", Endpoint{Segment: "b", Subnet: subB, Addr: netip.MustParseAddr("172.19.0.2"), Names: []string{"other"}}))
	if err := f.Attach("x", Endpoint{Segment: "a", Subnet: subA, Addr: netip.MustParseAddr("172.18.0.2")}); !errors.Is(err, ErrConfig) {
		t.Fatalf("a taken address: %v", err)
	}
	if err := f.Attach("x", Endpoint{Segment: "c", Subnet: netip.MustParsePrefix("172.18.5.0/24"), Addr: netip.MustParseAddr("172.18.5.2")}); !errors.Is(err, ErrConfig) {
		t.Fatalf("an overlapping subnet: %v", err)
	}
	webNet, web := member(t, f, "web")
	_, cli := member(t, f, "cli")
	_, other := member(t, f, "other")
	web.serve(t, 80)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for _, name := range []string{"web", "www", "WWW"} {
		addrs, err := cli.resolver().LookupHost(ctx, name)
		if err != nil || len(addrs) != 1 || addrs[0] != "172.18.0.2" {
			t.Fatalf("cli looks up %s: %v %v", name, addrs, err)
		}
	}
	got, err := readAll(t, cli, netip.MustParseAddrPort("172.18.0.2:80"))
	if err != nil || got != "172.18.0.3" {
		t.Fatalf("cli → web: %q %v (want the peer to see 172.18.0.3)", got, err)
	}

	// UDP: a datagram to web's segment address reaches web's guest, and its reply comes back.
	echo, err := gonet.DialUDP(web.s, &tcpip.FullAddress{NIC: 1, Port: 7000}, nil, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := echo.ReadFrom(buf)
			if err != nil {
				return
			}
			echo.WriteTo(append([]byte(from.(*net.UDPAddr).IP.String()+" "), buf[:n]...), from)
		}
	}()
	uc, err := gonet.DialUDP(cli.s, nil, &tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4([4]byte{172, 18, 0, 2}), Port: 7000}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	uc.Write([]byte("ping"))
	uc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	if n, err := uc.Read(buf); err != nil || string(buf[:n]) != "172.18.0.3 ping" {
		t.Fatalf("UDP cli → web: %q %v", buf[:n], err)
	}
	uc.Close()

	if addrs, err := other.resolver().LookupHost(ctx, "web"); err == nil {
		t.Fatalf("other (another segment) resolves web: %v", addrs)
	}
	if got, err := readAll(t, other, netip.MustParseAddrPort("172.18.0.2:80")); err == nil {
		t.Fatalf("other → web's address connected: %q", got)
	}

	lo, accepted := echoTCP(t, "127.0.0.1:0")
	addrs, err := other.resolver().LookupHost(ctx, "host.docker.internal")
	if err != nil || len(addrs) != 1 || addrs[0] != "10.0.2.254" {
		t.Fatalf("host.docker.internal: %v %v", addrs, err)
	}
	c, err := other.dial(ctx, netip.AddrPortFrom(netip.MustParseAddr("10.0.2.254"), lo.Port()))
	if err != nil {
		t.Fatalf("host.docker.internal:%d: %v", lo.Port(), err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatalf("echo through host.docker.internal: %v", err)
	}
	c.Close()
	if c, err := other.dial(ctx, netip.AddrPortFrom(netip.MustParseAddr("10.0.2.2"), lo.Port())); err == nil {
		c.Close()
		t.Fatal("the gateway's address reached the host's loopback")
	}
	if accepted.Load() != 1 {
		t.Errorf("the loopback server accepted %d connections, want 1", accepted.Load())
	}

	// Disconnected: no name, no route.
	f.Detach("cli", "a")
	if addrs, err := cli.resolver().LookupHost(ctx, "web"); err == nil {
		t.Fatalf("a detached member resolves web: %v", addrs)
	}
	if _, err := readAll(t, cli, netip.MustParseAddrPort("172.18.0.2:80")); err == nil {
		t.Fatal("a detached member connected")
	}
	// A stopped member's names go.
	must(f.Attach("cli", Endpoint{Segment: "a", Subnet: subA, Addr: netip.MustParseAddr("172.18.0.3"), Names: []string{"cli"}}))
	webNet.Close()
	if addrs, err := cli.resolver().LookupHost(ctx, "web"); err == nil {
		t.Fatalf("a stopped member resolves: %v", addrs)
	}
}

// On a datagram link (vz's file-handle attachment: one frame per datagram) the guest reaches the
// outside world, the host's loopback through HostLoopback, and the DNS server.
func TestDatagramLink(t *testing.T) {
	cfg := testConfig()
	cfg.Datagram = true
	cfg.HostLoopback = netip.MustParseAddr("10.0.2.254")
	ours, theirs, err := socketPairOf(syscall.SOCK_DGRAM)
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(cfg, ours)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	g := newGuestOn(t, theirs, true)
	defer g.close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	outside, _ := echoTCP(t, hostIPv4(t).String()+":0")
	lo, _ := echoTCP(t, "127.0.0.1:0")
	for _, to := range []netip.AddrPort{outside, netip.AddrPortFrom(cfg.HostLoopback, lo.Port())} {
		c, err := g.dial(ctx, to)
		if err != nil {
			t.Fatalf("→ %v: %v", to, err)
		}
		data := make([]byte, 256<<10) // many full-size frames
		go c.Write(data)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, data); err != nil {
			t.Fatalf("echo through %v: %v", to, err)
		}
		c.Close()
	}
	if addrs, err := g.resolver().LookupHost(ctx, "gateway.skiff.internal"); err != nil || len(addrs) != 1 || addrs[0] != "10.0.2.2" {
		t.Fatalf("DNS over the datagram link: %v %v", addrs, err)
	}
	if st := n.Stats(); st.RxFrames == 0 || st.TxFrames == 0 {
		t.Errorf("link counters: %+v", st)
	}
}
