// Package usernet is the user-space virtual network of one QEMU VM: a
// gateway with its own TCP/IP stack (gVisor's netstack, through
// github.com/containers/gvisor-tap-vsock's gateway pieces) served from the
// engine process on the socket of QEMU's `-netdev stream` (each frame
// prefixed by its length, 4 bytes big-endian).
//
// The guest sees a router at Config.Gateway and a DNS server at Config.DNS.
// The gateway answers DNS itself for Config.Names and asks the host's
// resolver for every other name; it carries the guest's TCP connections and
// UDP flows to the outside world from the engine's own sockets (NAT). It
// never maps an address to the host's loopback: a connection to the
// gateway's own addresses, to 127.0.0.0/8, 0.0.0.0/8, link-local, multicast
// or the virtual subnet is refused. Host services that listen on a
// non-loopback address are reachable, as any outside host is.
//
// Usage:
//
//	ours, qemus := socketpair()                 // qemus goes to qemu as addr.type=fd
//	n, err := usernet.New(cfg, ours)            // serves the guest link
//	...
//	n.Close()                                   // after qemu ended; waits for every goroutine
package usernet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/containers/gvisor-tap-vsock/pkg/services/dns"
	"github.com/containers/gvisor-tap-vsock/pkg/tap"
	"github.com/containers/gvisor-tap-vsock/pkg/types"
	"go.uber.org/zap"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// ErrConfig is returned for a Config that cannot make a network.
var ErrConfig = errors.New("usernet: bad configuration")

// Config is one virtual network.
type Config struct {
	Subnet     netip.Prefix     // IPv4, e.g. 10.0.2.0/24
	Gateway    netip.Addr       // the guest's router, in Subnet
	DNS        netip.Addr       // the gateway's DNS server, in Subnet
	GatewayMAC net.HardwareAddr // the gateway's Ethernet address
	MTU        int              // default 1500
	// Names the DNS server answers itself (A records), fully qualified
	// ("gateway.skiff.internal"); each name's parent domain is then the
	// server's own: other names in it do not exist.
	Names map[string]netip.Addr
	// HostLoopback, when valid, is an address in Subnet that stands for
	// the host's loopback: a connection or flow to one of its ports goes to
	// that port of 127.0.0.1 (host.docker.internal). It is the only way
	// into the host's loopback.
	HostLoopback netip.Addr
	// Guest is the guest's address in Subnet; the fabric's peers reach it
	// there. Required with Fabric.
	Guest netip.Addr
	// Fabric, when set, joins this network to other VMs' as Member: see
	// Fabric. The network plugs itself in at New and out at Close.
	Fabric *Fabric
	Member string
	// Datagram says the guest link is a datagram socket carrying one frame
	// per datagram with no length prefix (vz's file-handle attachment),
	// not QEMU's stream.
	Datagram bool
	Log      *zap.Logger // default: none
}

const nicID = 1

// Network is a running virtual network with one guest link.
type Network struct {
	cfg   Config
	log   *zap.Logger
	stack *stack.Stack
	link  *link

	ctx    context.Context // ends dials in flight at Close
	cancel context.CancelFunc

	dnsUDP *gonet.UDPConn
	dnsTCP *gonet.TCPListener

	wg     sync.WaitGroup // every goroutine the network runs, tracked under mu
	mu     sync.Mutex     // guards closed and open
	closed bool
	open   map[closer]struct{} // proxied connections and UDP flows, closed by Close

	closeOnce sync.Once
}

type closer interface{ Close() error }

func (c *Config) check() error {
	if !c.Subnet.IsValid() || !c.Subnet.Addr().Is4() {
		return fmt.Errorf("%w: subnet %v is not an IPv4 prefix", ErrConfig, c.Subnet)
	}
	c.Subnet = c.Subnet.Masked()
	for what, a := range map[string]netip.Addr{"gateway": c.Gateway, "DNS": c.DNS} {
		if !c.Subnet.Contains(a) {
			return fmt.Errorf("%w: %s address %v is not in %v", ErrConfig, what, a, c.Subnet)
		}
	}
	if c.HostLoopback.IsValid() && (!c.Subnet.Contains(c.HostLoopback) || c.HostLoopback == c.Gateway || c.HostLoopback == c.DNS) {
		return fmt.Errorf("%w: host loopback address %v is not a free address of %v", ErrConfig, c.HostLoopback, c.Subnet)
	}
	if c.Fabric != nil && (c.Member == "" || !c.Subnet.Contains(c.Guest)) {
		return fmt.Errorf("%w: a fabric member needs a name and its guest address in %v", ErrConfig, c.Subnet)
	}
	if c.Gateway == c.DNS {
		return fmt.Errorf("%w: gateway and DNS share %v", ErrConfig, c.Gateway)
	}
	if len(c.GatewayMAC) != 6 {
		return fmt.Errorf("%w: gateway MAC %q is not an Ethernet address", ErrConfig, c.GatewayMAC)
	}
	if c.MTU == 0 {
		c.MTU = 1500
	}
	if c.MTU < 576 || c.MTU > 65535 {
		return fmt.Errorf("%w: MTU %d", ErrConfig, c.MTU)
	}
	for name, a := range c.Names {
		if !a.Is4() || !strings.Contains(strings.Trim(name, "."), ".") {
			return fmt.Errorf("%w: DNS name %q → %v (want a dotted name and an IPv4 address)", ErrConfig, name, a)
		}
	}
	if c.Log == nil {
		c.Log = zap.NewNop()
	}
	return nil
}

// New starts the network and serves the guest link on conn, QEMU's end of
// which is its `-netdev stream` socket. The network owns conn.
func New(cfg Config, conn net.Conn) (*Network, error) {
	if err := cfg.check(); err != nil {
		conn.Close()
		return nil, err
	}
	virtual := []string{cfg.DNS.String()} // the addresses besides the gateway's it answers ARP for
	if cfg.HostLoopback.IsValid() {
		virtual = append(virtual, cfg.HostLoopback.String())
	}
	ep, err := tap.NewLinkEndpoint(false, uint32(cfg.MTU), cfg.GatewayMAC.String(), cfg.Gateway.String(), virtual)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("usernet: link endpoint: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Network{cfg: cfg, log: cfg.Log, ctx: ctx, cancel: cancel, open: map[closer]struct{}{}}
	n.link = newLink(n, conn, ep)
	ep.Connect(n.link)
	if n.stack, err = newStack(cfg, ep); err != nil {
		cancel()
		conn.Close()
		return nil, err
	}
	n.stack.SetTransportProtocolHandler(tcp.ProtocolNumber, tcp.NewForwarder(n.stack, 0, 64, n.forwardTCP).HandlePacket)
	n.stack.SetTransportProtocolHandler(udp.ProtocolNumber, udp.NewForwarder(n.stack, n.forwardUDP).HandlePacket)
	if err := n.serveDNS(); err != nil {
		n.Close()
		return nil, err
	}
	n.run(n.link.read)
	n.run(n.link.write)
	if cfg.Fabric != nil {
		cfg.Fabric.plug(cfg.Member, n)
	}
	return n, nil
}

func newStack(cfg Config, ep stack.LinkEndpoint) (*stack.Stack, error) {
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4},
	})
	fail := func(what string, err tcpip.Error) (*stack.Stack, error) {
		s.Destroy()
		return nil, fmt.Errorf("usernet: %s: %s", what, err)
	}
	sack := tcpip.TCPSACKEnabled(true)
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack); err != nil {
		return fail("TCP SACK", err)
	}
	if err := s.CreateNIC(nicID, ep); err != nil {
		return fail("NIC", err)
	}
	own := []netip.Addr{cfg.Gateway, cfg.DNS}
	if cfg.HostLoopback.IsValid() {
		own = append(own, cfg.HostLoopback)
	}
	for _, a := range own {
		if err := s.AddProtocolAddress(nicID, tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber,
			AddressWithPrefix: tcpip.AddrFrom4(a.As4()).WithPrefix()}, stack.AddressProperties{}); err != nil {
			return fail("address "+a.String(), err)
		}
	}
	// The gateway takes every packet the guest sends it, whatever its
	// destination (the forwarders decide), and answers from that address.
	s.SetSpoofing(nicID, true)
	s.SetPromiscuousMode(nicID, true)
	subnet, err := tcpip.NewSubnet(tcpip.AddrFrom4(cfg.Subnet.Addr().As4()),
		tcpip.MaskFromBytes(net.CIDRMask(cfg.Subnet.Bits(), 32)))
	if err != nil {
		s.Destroy()
		return nil, fmt.Errorf("usernet: subnet: %w", err)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: subnet, NIC: nicID}})
	return s, nil
}

// serveDNS answers DNS on the DNS address, UDP and TCP port 53.
func (n *Network) serveDNS() error {
	at := tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFrom4(n.cfg.DNS.As4()), Port: 53}
	var err error
	if n.dnsUDP, err = gonet.DialUDP(n.stack, &at, nil, ipv4.ProtocolNumber); err != nil {
		return fmt.Errorf("usernet: DNS over UDP: %w", err)
	}
	if n.dnsTCP, err = gonet.ListenTCP(n.stack, at, ipv4.ProtocolNumber); err != nil {
		return fmt.Errorf("usernet: DNS over TCP: %w", err)
	}
	srv, err := dns.NewWithUpstreamResolver(n.dnsUDP, n.dnsTCP, zones(n.cfg.Names), hostResolver{net.DefaultResolver, n})
	if err != nil {
		return fmt.Errorf("usernet: DNS: %w", err)
	}
	n.run(func() {
		if err := srv.Serve(); err != nil && n.ctx.Err() == nil {
			n.log.Warn("usernet: DNS over UDP ended", zap.Error(err))
		}
	})
	n.run(func() {
		if err := srv.ServeTCP(); err != nil && n.ctx.Err() == nil {
			n.log.Warn("usernet: DNS over TCP ended", zap.Error(err))
		}
	})
	return nil
}

// zones groups names by their parent domain, the form the DNS server takes.
func zones(names map[string]netip.Addr) []types.Zone {
	byZone := map[string]*types.Zone{}
	var out []types.Zone
	var order []string
	for name, a := range names {
		label, zone, _ := strings.Cut(strings.Trim(strings.ToLower(name), "."), ".")
		z := byZone[zone]
		if z == nil {
			z = &types.Zone{Name: zone + "."}
			byZone[zone] = z
			order = append(order, zone)
		}
		z.Records = append(z.Records, types.Record{Name: label, IP: net.IP(a.AsSlice())})
	}
	for _, zone := range order {
		out = append(out, *byZone[zone])
	}
	return out
}

// hostResolver answers the names of the fabric's peers (Fabric.lookup),
// and asks the host's resolver (the engine's: its /etc/hosts, its
// DNS servers) for the other names the guest looks up. A name in a DNS
// question is fully qualified ("vm."), which glibc's hosts file lookup
// does not match: the trailing dot goes.
type hostResolver struct {
	r *net.Resolver
	n *Network
}

func (h hostResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	if f := h.n.cfg.Fabric; f != nil {
		if addrs := f.lookup(h.n.cfg.Member, host); len(addrs) > 0 {
			out := make([]net.IPAddr, len(addrs))
			for i, a := range addrs {
				out[i] = net.IPAddr{IP: net.IP(a.AsSlice())}
			}
			return out, nil
		}
	}
	return h.r.LookupIPAddr(ctx, strings.TrimSuffix(host, "."))
}

func (h hostResolver) LookupCNAME(ctx context.Context, host string) (string, error) {
	return h.r.LookupCNAME(ctx, strings.TrimSuffix(host, "."))
}

func (h hostResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	return h.r.LookupMX(ctx, strings.TrimSuffix(name, "."))
}

func (h hostResolver) LookupNS(ctx context.Context, name string) ([]*net.NS, error) {
	return h.r.LookupNS(ctx, strings.TrimSuffix(name, "."))
}

func (h hostResolver) LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error) {
	return h.r.LookupSRV(ctx, service, proto, strings.TrimSuffix(name, "."))
}

func (h hostResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	return h.r.LookupTXT(ctx, strings.TrimSuffix(name, "."))
}

// run starts fn as one of the network's goroutines; false once closed.
func (n *Network) run(fn func()) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		fn()
	}()
	return true
}

// track registers c for Close to close; false (and c closed) once closed.
func (n *Network) track(c closer) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		c.Close()
		return false
	}
	n.open[c] = struct{}{}
	return true
}

func (n *Network) untrack(c closer) {
	n.mu.Lock()
	delete(n.open, c)
	n.mu.Unlock()
}

// Close ends the network: the guest link, every forwarded connection and
// flow, the DNS server and the stack. It returns once all of the network's
// goroutines have.
func (n *Network) Close() error {
	n.closeOnce.Do(func() {
		if n.cfg.Fabric != nil {
			n.cfg.Fabric.unplug(n.cfg.Member, n)
		}
		n.mu.Lock()
		n.closed = true
		open := n.open
		n.open = nil
		n.mu.Unlock()
		n.cancel()
		if n.link != nil {
			n.link.close()
		}
		for c := range open {
			c.Close()
		}
		if n.dnsUDP != nil {
			n.dnsUDP.Close()
		}
		if n.dnsTCP != nil {
			n.dnsTCP.Close()
		}
		if n.stack != nil {
			n.stack.Close()
		}
		n.wg.Wait()
		if n.stack != nil {
			n.stack.Wait()
		}
	})
	return nil
}

// Stats are the guest link's counters.
type Stats struct {
	RxFrames, TxFrames, TxDropped uint64
}

// Stats reports the guest link's counters.
func (n *Network) Stats() Stats { return n.link.stats() }
