package usernet

import (
	"context"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/containers/gvisor-tap-vsock/pkg/services/forwarder"
	"go.uber.org/zap"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// dialTimeout bounds an outbound TCP connect; the guest's SYN waits for it.
const dialTimeout = 30 * time.Second

// udpIdle is how long a UDP flow lives without traffic either way.
const udpIdle = 90 * time.Second

var (
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	loopback    = netip.MustParsePrefix("127.0.0.0/8")
	linkLocal   = netip.MustParsePrefix("169.254.0.0/16") // and cloud metadata services
	multicast   = netip.MustParsePrefix("224.0.0.0/4")
	reserved    = netip.MustParsePrefix("240.0.0.0/4") // and the limited broadcast
)

// outbound reports whether the guest may reach dst through the gateway:
// not the host's loopback (127/8, and 0/8, which connect() takes for it),
// not the virtual subnet (the gateway's own addresses), not link-local
// (cloud metadata), multicast or reserved addresses.
func (n *Network) outbound(dst netip.Addr) bool {
	if !dst.Is4() || n.cfg.Subnet.Contains(dst) {
		return false
	}
	for _, p := range []netip.Prefix{thisNetwork, loopback, linkLocal, multicast, reserved} {
		if p.Contains(dst) {
			return false
		}
	}
	return true
}

// tcpDialer says how a guest's connection to dst is made: into the host's
// loopback (HostLoopback), into a fabric peer's stack (an address of a
// segment both are on), or from the host to the outside world; nil when
// dst is not reachable.
func (n *Network) tcpDialer(dst netip.AddrPort) func(ctx context.Context) (net.Conn, error) {
	if n.cfg.HostLoopback.IsValid() && dst.Addr() == n.cfg.HostLoopback {
		to := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), dst.Port()).String()
		return func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp4", to)
		}
	}
	if n.cfg.Fabric != nil {
		if peer, src, in := n.cfg.Fabric.route(n.cfg.Member, dst.Addr()); in {
			if peer == nil {
				return nil
			}
			return func(ctx context.Context) (net.Conn, error) { return peer.dialGuestTCP(ctx, src, dst.Port()) }
		}
	}
	if !n.outbound(dst.Addr()) {
		return nil
	}
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp4", dst.String())
	}
}

// udpDialer is tcpDialer for a UDP flow.
func (n *Network) udpDialer(dst netip.AddrPort) func() (net.Conn, error) {
	if n.cfg.HostLoopback.IsValid() && dst.Addr() == n.cfg.HostLoopback {
		to := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), dst.Port()).String()
		return func() (net.Conn, error) { return net.Dial("udp4", to) }
	}
	if n.cfg.Fabric != nil {
		if peer, src, in := n.cfg.Fabric.route(n.cfg.Member, dst.Addr()); in {
			if peer == nil {
				return nil
			}
			return func() (net.Conn, error) { return peer.dialGuestUDP(src, dst.Port()) }
		}
	}
	if !n.outbound(dst.Addr()) {
		return nil
	}
	return func() (net.Conn, error) { return net.Dial("udp4", dst.String()) }
}

func addrOf(a tcpip.Address) netip.Addr {
	ip, _ := netip.AddrFromSlice(a.AsSlice())
	return ip.Unmap()
}

// enter counts a goroutine the stack started as one of the network's;
// false once closed.
func (n *Network) enter() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	n.wg.Add(1)
	return true
}

// forwardTCP runs (in a goroutine of its own) for each SYN the guest sends
// to an address with no endpoint in the stack: it connects to that address
// from the host and, once connected, completes the guest's handshake and
// copies both ways; a refused or unreachable destination resets the guest's.
func (n *Network) forwardTCP(r *tcp.ForwarderRequest) {
	if !n.enter() {
		r.Complete(true)
		return
	}
	defer n.wg.Done()
	id := r.ID()
	dst := netip.AddrPortFrom(addrOf(id.LocalAddress), id.LocalPort)
	dial := n.tcpDialer(dst)
	if dial == nil {
		n.log.Debug("usernet: refused", zap.Stringer("tcp", dst))
		r.Complete(true)
		return
	}
	ctx, cancel := context.WithTimeout(n.ctx, dialTimeout)
	out, err := dial(ctx)
	cancel()
	if err != nil {
		n.log.Debug("usernet: connect", zap.Stringer("tcp", dst), zap.Error(err))
		r.Complete(true)
		return
	}
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	r.Complete(false)
	if terr != nil {
		out.Close()
		n.log.Debug("usernet: guest handshake", zap.Stringer("tcp", dst), zap.String("error", terr.String()))
		return
	}
	in := gonet.NewTCPConn(&wq, ep)
	if !n.track(in) {
		out.Close()
		return
	}
	defer n.untrack(in)
	if !n.track(out) {
		in.Close()
		return
	}
	defer n.untrack(out)
	splice(in, out)
}

// splice copies both ways until both directions ended; an end of stream
// is passed on as a half close, an error closes both.
func splice(a, b net.Conn) {
	var wg sync.WaitGroup
	one := func(dst, src net.Conn) {
		if _, err := io.Copy(dst, src); err != nil {
			a.Close()
			b.Close()
			return
		}
		if cw, ok := dst.(interface{ CloseWrite() error }); !ok || cw.CloseWrite() != nil {
			dst.Close()
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		one(b, a)
	}()
	one(a, b)
	wg.Wait()
	a.Close()
	b.Close()
}

// forwardUDP runs (in the stack's receive path) for the first datagram of
// each flow the guest sends to an address with no endpoint in the stack:
// it makes an endpoint for the flow and proxies it through a host UDP
// socket until it is idle for udpIdle.
func (n *Network) forwardUDP(r *udp.ForwarderRequest) {
	id := r.ID()
	dst := netip.AddrPortFrom(addrOf(id.LocalAddress), id.LocalPort)
	dial := n.udpDialer(dst)
	if dial == nil {
		n.log.Debug("usernet: dropped", zap.Stringer("udp", dst))
		return
	}
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	if terr != nil {
		n.log.Debug("usernet: UDP flow", zap.Stringer("udp", dst), zap.String("error", terr.String()))
		return
	}
	in := &idleUDP{gonet.NewUDPConn(&wq, ep)}
	p, _ := forwarder.NewUDPProxy(in, dial)
	if !n.track(p) {
		return
	}
	if !n.run(func() {
		p.Run() // until the flow is idle or closed
		n.untrack(p)
		p.Close() // and the host sockets of its replies
	}) {
		p.Close()
	}
}

// idleUDP is the guest's side of a UDP flow: a read waits at most udpIdle.
type idleUDP struct{ *gonet.UDPConn }

func (c *idleUDP) ReadFrom(b []byte) (int, net.Addr, error) {
	c.SetReadDeadline(time.Now().Add(udpIdle))
	return c.UDPConn.ReadFrom(b)
}
