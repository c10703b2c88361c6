package usernet

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

func testConfig() Config {
	mac, _ := net.ParseMAC("52:55:0a:00:02:02")
	return Config{Subnet: netip.MustParsePrefix("10.0.2.0/24"), Gateway: netip.MustParseAddr("10.0.2.2"),
		DNS: netip.MustParseAddr("10.0.2.3"), GatewayMAC: mac,
		Names: map[string]netip.Addr{"gateway.skiff.internal": netip.MustParseAddr("10.0.2.2")}}
}

func TestConfigErrors(t *testing.T) {
	for name, edit := range map[string]func(*Config){
		"no subnet":          func(c *Config) { c.Subnet = netip.Prefix{} },
		"IPv6 subnet":        func(c *Config) { c.Subnet = netip.MustParsePrefix("fd00::/64") },
		"gateway outside":    func(c *Config) { c.Gateway = netip.MustParseAddr("10.0.3.2") },
		"DNS outside":        func(c *Config) { c.DNS = netip.MustParseAddr("192.168.1.1") },
		"gateway is the DNS": func(c *Config) { c.DNS = c.Gateway },
		"no MAC":             func(c *Config) { c.GatewayMAC = nil },
		"tiny MTU":           func(c *Config) { c.MTU = 100 },
		"single-label name":  func(c *Config) { c.Names = map[string]netip.Addr{"gateway": c.Gateway} },
		"IPv6 name":          func(c *Config) { c.Names = map[string]netip.Addr{"a.b": netip.MustParseAddr("::1")} },
	} {
		cfg := testConfig()
		edit(&cfg)
		ours, theirs := net.Pipe()
		n, err := New(cfg, ours)
		if !errors.Is(err, ErrConfig) {
			if n != nil {
				n.Close()
			}
			t.Errorf("%s: got %v, want ErrConfig", name, err)
		}
		// New closed its end.
		if _, err := theirs.Write([]byte{0}); err == nil {
			t.Errorf("%s: the link was left open", name)
		}
		theirs.Close()
	}
}

// guest is a TCP/IP stack at 10.0.2.15 attached to a Network the way QEMU
// is: Ethernet frames, each prefixed by its length, on a socket.
type guest struct {
	datagram bool // one frame per datagram, no length prefix (vz)
	s        *stack.Stack
	ch       *channel.Endpoint
	conn     net.Conn
	cancel   context.CancelFunc
	done     chan struct{}
}

func newGuest(t *testing.T, conn net.Conn) *guest { return newGuestOn(t, conn, false) }

func newGuestOn(t *testing.T, conn net.Conn, datagram bool) *guest {
	t.Helper()
	ch := channel.New(256, 1500, tcpip.LinkAddress("\x52\x54\x00\x12\x34\x56"))
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol},
	})
	if err := s.CreateNIC(1, ethernet.New(ch)); err != nil {
		t.Fatal(err)
	}
	if err := s.AddProtocolAddress(1, tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4([4]byte{10, 0, 2, 15}), PrefixLen: 24}},
		stack.AddressProperties{}); err != nil {
		t.Fatal(err)
	}
	subnet, _ := tcpip.NewSubnet(tcpip.AddrFrom4([4]byte{10, 0, 2, 0}), tcpip.MaskFromBytes([]byte{255, 255, 255, 0}))
	s.SetRouteTable([]tcpip.Route{{Destination: subnet, NIC: 1},
		{Destination: header.IPv4EmptySubnet, Gateway: tcpip.AddrFrom4([4]byte{10, 0, 2, 2}), NIC: 1}})
	ctx, cancel := context.WithCancel(context.Background())
	g := &guest{datagram: datagram, s: s, ch: ch, conn: conn, cancel: cancel, done: make(chan struct{})}
	go func() { // out
		defer close(g.done)
		for {
			pkt := ch.ReadContext(ctx)
			if pkt == nil {
				return
			}
			v := pkt.ToView()
			var frame []byte
			if !datagram {
				frame = binary.BigEndian.AppendUint32(nil, uint32(v.Size()))
			}
			frame = append(frame, v.AsSlice()...)
			v.Release()
			pkt.DecRef()
			if _, err := conn.Write(frame); err != nil {
				return
			}
		}
	}()
	go func() { // in
		if datagram {
			buf := make([]byte, 70000)
			for {
				n, err := conn.Read(buf)
				if err != nil {
					return
				}
				pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(buf[:n])})
				ch.InjectInbound(0, pkt)
				pkt.DecRef()
			}
		}
		r := bufio.NewReader(conn)
		var hdr [4]byte
		for {
			if _, err := io.ReadFull(r, hdr[:]); err != nil {
				return
			}
			frame := make([]byte, binary.BigEndian.Uint32(hdr[:]))
			if _, err := io.ReadFull(r, frame); err != nil {
				return
			}
			pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(frame)})
			ch.InjectInbound(0, pkt)
			pkt.DecRef()
		}
	}()
	return g
}

func (g *guest) close() {
	g.conn.Close()
	g.cancel()
	<-g.done
	g.s.Destroy()
	g.ch.Close()
}

func (g *guest) dial(ctx context.Context, to netip.AddrPort) (net.Conn, error) {
	return gonet.DialContextTCP(ctx, g.s, tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(to.Addr().As4()), Port: to.Port()}, ipv4.ProtocolNumber)
}

// resolver asks the gateway's DNS server over the guest's stack.
func (g *guest) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		dns := tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4([4]byte{10, 0, 2, 3}), Port: 53}
		if network == "tcp" {
			return gonet.DialContextTCP(ctx, g.s, dns, ipv4.ProtocolNumber)
		}
		return gonet.DialUDP(g.s, nil, &dns, ipv4.ProtocolNumber)
	}}
}

// hostIPv4 is the first non-loopback IPv4 address of the host's interfaces
// that are up: an outside address the gateway may reach.
func hostIPv4(t *testing.T) netip.Addr {
	t.Helper()
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if p, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(p.IP.To4()); ok && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() {
					return ip
				}
			}
		}
	}
	t.Fatal("the host has no non-loopback IPv4 address to test with")
	return netip.Addr{}
}

// echoTCP serves TCP echo on addr until the test ends; accepted counts
// its connections.
func echoTCP(t *testing.T, addr string) (at netip.AddrPort, accepted *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	accepted = new(atomic.Int32)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return l.Addr().(*net.TCPAddr).AddrPort(), accepted
}

// rawSYN sends a TCP SYN from the guest's address to dst as a frame of its
// own: a guest's root can send any packet to the gateway, martians too.
func (g *guest) rawSYN(dst netip.AddrPort) {
	src := tcpip.AddrFrom4([4]byte{10, 0, 2, 15})
	to := tcpip.AddrFrom4(dst.Addr().As4())
	frame := make([]byte, header.EthernetMinimumSize+header.IPv4MinimumSize+header.TCPMinimumSize)
	header.Ethernet(frame).Encode(&header.EthernetFields{SrcAddr: g.ch.LinkAddress(),
		DstAddr: tcpip.LinkAddress(testConfig().GatewayMAC), Type: ipv4.ProtocolNumber})
	ip := header.IPv4(frame[header.EthernetMinimumSize:])
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(len(ip)), TTL: 64, Protocol: uint8(tcp.ProtocolNumber), SrcAddr: src, DstAddr: to})
	ip.SetChecksum(^ip.CalculateChecksum())
	seg := header.TCP(ip[header.IPv4MinimumSize:])
	seg.Encode(&header.TCPFields{SrcPort: 40000, DstPort: dst.Port(), SeqNum: 1, DataOffset: header.TCPMinimumSize,
		Flags: header.TCPFlagSyn, WindowSize: 65535})
	seg.SetChecksum(^seg.CalculateChecksum(header.PseudoHeaderChecksum(tcp.ProtocolNumber, src, to, uint16(len(seg)))))
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(frame)})
	var l stack.PacketBufferList
	l.PushBack(pkt)
	g.ch.WritePackets(l)
	pkt.DecRef()
}

// waitGoroutines waits until no more goroutines run than before.
func waitGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNetwork(t *testing.T) {
	host := hostIPv4(t)
	outside, outsideAccepted := echoTCP(t, host.String()+":0")
	lo, loAccepted := echoTCP(t, "127.0.0.1:0")
	udpOut, err := net.ListenUDP("udp4", &net.UDPAddr{IP: host.AsSlice()})
	if err != nil {
		t.Fatal(err)
	}
	defer udpOut.Close()
	go func() { // UDP echo
		buf := make([]byte, 2048)
		for {
			n, from, err := udpOut.ReadFromUDP(buf)
			if err != nil {
				return
			}
			udpOut.WriteToUDP(buf[:n], from)
		}
	}()
	before := runtime.NumGoroutine()

	ours, theirs, err := socketPair()
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(testConfig(), ours)
	if err != nil {
		t.Fatal(err)
	}
	g := newGuest(t, theirs)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("TCP to an outside address", func(t *testing.T) {
		c, err := g.dial(ctx, outside)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		msg := make([]byte, 1<<20) // many frames each way
		for i := range msg {
			msg[i] = byte(i * 7)
		}
		go c.Write(msg)
		got := make([]byte, len(msg))
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != string(msg) {
			t.Fatalf("echo through NAT: %v", err)
		}
	})
	t.Run("no host loopback", func(t *testing.T) {
		for _, gw := range []string{"10.0.2.2", "10.0.2.3"} { // the gateway's own addresses
			c, err := g.dial(ctx, netip.AddrPortFrom(netip.MustParseAddr(gw), lo.Port()))
			if err == nil {
				c.Close()
				t.Errorf("%s:%d reached the host's loopback", gw, lo.Port())
			} else if !strings.Contains(err.Error(), "refused") {
				t.Errorf("%s:%d: %v, want connection refused", gw, lo.Port(), err)
			}
		}
		// The host's loopback as a destination, which the guest's own stack
		// does not route but a raw socket sends; the same SYN to the
		// outside address is answered (the host accepts).
		was := outsideAccepted.Load()
		for _, to := range []string{"127.0.0.1", "0.0.0.0", "127.1.2.3"} {
			g.rawSYN(netip.AddrPortFrom(netip.MustParseAddr(to), lo.Port()))
		}
		g.rawSYN(outside)
		for deadline := time.Now().Add(5 * time.Second); outsideAccepted.Load() == was && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		if outsideAccepted.Load() == was {
			t.Error("a raw SYN to the outside address was not forwarded")
		}
		time.Sleep(200 * time.Millisecond)
		if n := loAccepted.Load(); n != 0 {
			t.Errorf("the host's loopback listener accepted %d connections", n)
		}
	})
	t.Run("UDP to an outside address", func(t *testing.T) {
		dst := tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(host.As4()), Port: uint16(udpOut.LocalAddr().(*net.UDPAddr).Port)}
		c, err := gonet.DialUDP(g.s, nil, &dst, ipv4.ProtocolNumber)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		buf := make([]byte, 64)
		for i := 0; i < 20; i++ { // the first may go while the guest resolves the gateway's MAC
			c.Write([]byte("ping"))
			c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			if k, err := c.Read(buf); err == nil {
				if string(buf[:k]) != "ping" {
					t.Fatalf("UDP echo: %q", buf[:k])
				}
				return
			}
		}
		t.Fatal("no UDP echo through NAT")
	})
	t.Run("DNS", func(t *testing.T) {
		r := g.resolver()
		if ips, err := r.LookupNetIP(ctx, "ip4", "gateway.skiff.internal"); err != nil || len(ips) != 1 || ips[0].String() != "10.0.2.2" {
			t.Errorf("gateway.skiff.internal: %v %v", ips, err)
		}
		if ips, err := r.LookupNetIP(ctx, "ip4", "other.skiff.internal"); err == nil {
			t.Errorf("other.skiff.internal: %v, want no such host", ips)
		}
		// From the host's resolver: its "localhost".
		if ips, err := r.LookupNetIP(ctx, "ip4", "localhost"); err != nil || len(ips) == 0 || !ips[0].IsLoopback() {
			t.Errorf("localhost: %v %v", ips, err)
		}
	})

	// Close with a connection and a UDP flow open: everything ends.
	c, err := g.dial(ctx, outside)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	one := make([]byte, 1)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, one); err != nil {
		t.Fatal(err)
	}
	if st := n.Stats(); st.RxFrames == 0 || st.TxFrames == 0 {
		t.Errorf("stats: %+v", st)
	}
	n.Close()
	n.Close() // again: nothing
	g.close()
	waitGoroutines(t, before)
}

// socketPair is a connected pair of stream sockets, as the VM backend makes.
func socketPair() (net.Conn, net.Conn, error) { return socketPairOf(syscall.SOCK_STREAM) }

func socketPairOf(typ int) (net.Conn, net.Conn, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, typ|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	var conns [2]net.Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "usernet-test")
		conns[i], err = net.FileConn(f)
		f.Close()
		if err != nil {
			return nil, nil, err
		}
	}
	return conns[0], conns[1], nil
}

func TestOutbound(t *testing.T) {
	n := &Network{cfg: testConfig()}
	for addr, want := range map[string]bool{
		"192.0.2.2": true, "8.8.8.8": true, "10.0.3.1": true, "172.17.0.1": true,
		"10.0.2.2": false, "10.0.2.3": false, "10.0.2.15": false, "10.0.2.255": false, // the virtual subnet
		"127.0.0.1": false, "127.255.0.9": false, "0.0.0.0": false, "0.1.2.3": false, // the host's loopback
		"169.254.169.254": false, "224.0.0.251": false, "239.1.1.1": false, "255.255.255.255": false, "240.0.0.1": false,
		"::1": false, "fe80::1": false, "2001:db8::1": false,
	} {
		if got := n.outbound(netip.MustParseAddr(addr)); got != want {
			t.Errorf("outbound(%s) = %v, want %v", addr, got, want)
		}
	}
}
