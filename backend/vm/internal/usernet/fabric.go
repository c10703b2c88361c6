package usernet

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

// Fabric joins the networks of several VMs into shared segments: the
// engine's container networks. It lives in the engine process, one for all
// VMs. Each VM keeps its own link and gateway (its Network); a member
// (a container, named by a string) has an address on each segment it is
// attached to. A VM's gateway answers DNS for the names of the other
// running members of its segments with their addresses on that segment,
// and carries a TCP connection or UDP flow to such an address into the
// peer's own stack, where it reaches the peer's guest from the caller's
// segment address. Nothing crosses between segments: an address of a
// segment the caller is not on is refused, as is every segment address
// once its member stops.
//
// Attach, Detach and Forget may be called at any time; a running VM sees
// the change on its next lookup or connection.
type Fabric struct {
	mu       sync.Mutex
	segments map[string]netip.Prefix          // segment ID → subnet
	members  map[string]*fabricMember         // member → its attachments and VM
	byAddr   map[string]map[netip.Addr]string // segment → address → member
}

type fabricMember struct {
	eps map[string]Endpoint // by segment ID
	net *Network            // the running VM's network; nil when not running
}

// Endpoint is a member's attachment to one segment.
type Endpoint struct {
	Segment string       // the network's ID
	Subnet  netip.Prefix // the segment's IPv4 subnet (the same for every member)
	Addr    netip.Addr   // the member's address in Subnet
	Names   []string     // DNS names of the member on this segment (name, aliases)
}

// NewFabric returns an empty fabric.
func NewFabric() *Fabric {
	return &Fabric{segments: map[string]netip.Prefix{}, members: map[string]*fabricMember{},
		byAddr: map[string]map[netip.Addr]string{}}
}

// Attach puts member on ep.Segment at ep.Addr (replacing an earlier
// attachment of member to it). An address another member holds there, one
// outside the subnet, or a subnet that differs from the segment's is
// ErrConfig.
func (f *Fabric) Attach(member string, ep Endpoint) error {
	if member == "" || ep.Segment == "" {
		return fmt.Errorf("%w: fabric attachment without a member or segment", ErrConfig)
	}
	if !ep.Subnet.IsValid() || !ep.Addr.Is4() || !ep.Subnet.Contains(ep.Addr) {
		return fmt.Errorf("%w: address %v is not in subnet %v", ErrConfig, ep.Addr, ep.Subnet)
	}
	ep.Subnet = ep.Subnet.Masked()
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.segments[ep.Segment]; ok && s != ep.Subnet {
		return fmt.Errorf("%w: segment %s is %v, not %v", ErrConfig, ep.Segment, s, ep.Subnet)
	}
	for id, s := range f.segments {
		if id != ep.Segment && s.Overlaps(ep.Subnet) {
			return fmt.Errorf("%w: subnet %v overlaps segment %s (%v)", ErrConfig, ep.Subnet, id, s)
		}
	}
	if holder, ok := f.byAddr[ep.Segment][ep.Addr]; ok && holder != member {
		return fmt.Errorf("%w: address %v of segment %s is taken", ErrConfig, ep.Addr, ep.Segment)
	}
	m := f.members[member]
	if m == nil {
		m = &fabricMember{eps: map[string]Endpoint{}}
		f.members[member] = m
	}
	if old, ok := m.eps[ep.Segment]; ok {
		delete(f.byAddr[ep.Segment], old.Addr)
	}
	ep.Names = slices.Clone(ep.Names)
	m.eps[ep.Segment] = ep
	f.segments[ep.Segment] = ep.Subnet
	if f.byAddr[ep.Segment] == nil {
		f.byAddr[ep.Segment] = map[netip.Addr]string{}
	}
	f.byAddr[ep.Segment][ep.Addr] = member
	return nil
}

// Detach takes member off segment.
func (f *Fabric) Detach(member, segment string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.members[member]
	if m == nil {
		return
	}
	if ep, ok := m.eps[segment]; ok {
		delete(f.byAddr[segment], ep.Addr)
		delete(m.eps, segment)
	}
	f.dropEmptyLocked(member, segment)
}

// Forget takes member off every segment.
func (f *Fabric) Forget(member string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.members[member]
	if m == nil {
		return
	}
	for seg, ep := range m.eps {
		delete(f.byAddr[seg], ep.Addr)
		delete(m.eps, seg)
		f.dropEmptyLocked(member, seg)
	}
}

func (f *Fabric) dropEmptyLocked(member, segment string) {
	if len(f.byAddr[segment]) == 0 {
		delete(f.byAddr, segment)
		delete(f.segments, segment)
	}
	if m := f.members[member]; m != nil && len(m.eps) == 0 && m.net == nil {
		delete(f.members, member)
	}
}

// plug makes n the running network of member.
func (f *Fabric) plug(member string, n *Network) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.members[member]
	if m == nil {
		m = &fabricMember{eps: map[string]Endpoint{}}
		f.members[member] = m
	}
	m.net = n
}

// unplug ends member's running network, if it is still n.
func (f *Fabric) unplug(member string, n *Network) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if m := f.members[member]; m != nil && m.net == n {
		m.net = nil
		if len(m.eps) == 0 {
			delete(f.members, member)
		}
	}
}

// lookup returns the addresses name has for member: those of the running
// members of member's segments that bear the name (case-insensitively).
func (f *Fabric) lookup(member, name string) []netip.Addr {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	f.mu.Lock()
	defer f.mu.Unlock()
	me := f.members[member]
	if me == nil || name == "" {
		return nil
	}
	var out []netip.Addr
	for seg := range me.eps {
		for addr, other := range f.byAddr[seg] {
			o := f.members[other]
			if o == nil || o.net == nil {
				continue
			}
			for _, n := range o.eps[seg].Names {
				if strings.EqualFold(n, name) {
					out = append(out, addr)
					break
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return slices.Compact(out)
}

// route decides where dst goes for member: inFabric says dst is in a
// segment's subnet (so never to the outside world); peer is the running
// network holding dst on a segment member is on, and src member's own
// address there.
func (f *Fabric) route(member string, dst netip.Addr) (peer *Network, src netip.Addr, inFabric bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for seg, subnet := range f.segments {
		if !subnet.Contains(dst) {
			continue
		}
		inFabric = true
		me := f.members[member]
		if me == nil {
			continue
		}
		ep, ok := me.eps[seg]
		if !ok {
			continue
		}
		if o := f.members[f.byAddr[seg][dst]]; o != nil && o.net != nil {
			return o.net, ep.Addr, true
		}
	}
	return nil, netip.Addr{}, inFabric
}

// dialGuestTCP opens a TCP connection in n's stack to its guest's port,
// from address src (a peer's segment address: the guest answers it
// through its gateway, which is this stack).
func (n *Network) dialGuestTCP(ctx context.Context, src netip.Addr, port uint16) (*gonet.TCPConn, error) {
	return gonet.DialTCPWithBind(ctx, n.stack,
		tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFrom4(src.As4())},
		tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFrom4(n.cfg.Guest.As4()), Port: port}, ipv4.ProtocolNumber)
}

// dialGuestUDP opens a UDP flow in n's stack to its guest's port, from
// src.
func (n *Network) dialGuestUDP(src netip.Addr, port uint16) (*gonet.UDPConn, error) {
	return gonet.DialUDP(n.stack, &tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFrom4(src.As4())},
		&tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFrom4(n.cfg.Guest.As4()), Port: port}, ipv4.ProtocolNumber)
}
