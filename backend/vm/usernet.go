package vm

import (
	"net"
	"net/netip"

	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm/internal/usernet"
)

// The user-space network of each VM (backend/vm/internal/usernet, QEMU and
// vz), fixed, so that the guest is configured from the kernel command line instead of
// asking by DHCP (which costs a TCG guest over a second of boot). The
// addresses are those QEMU's own user-mode network used: boot snapshots and
// guests see the same network as before.
const (
	netSubnet  = "10.0.2.0/24"
	netGuest   = "10.0.2.15/24"
	netGateway = "10.0.2.2"
	netDNS     = "10.0.2.3"
	// netHost stands for the host's loopback: HostAlias resolves to it.
	netHost = "10.0.2.254"
	// netGatewayMAC is the gateway's Ethernet address. A restored guest
	// may have it in its ARP cache from the template.
	netGatewayMAC = "52:55:0a:00:02:02"
	// netDomain is the zone the gateway's DNS server answers itself;
	// gateway.<netDomain> is the gateway.
	netDomain = "skiff.internal"
	// NetMTU is the virtual link's MTU under QEMU, which the guest's
	// virtio-net driver takes from the device (host_mtu): the gateway's
	// stack ends the guest's TCP connections, so the link need not match the
	// host's network, and under TCG a guest's cost is per packet more than
	// per byte. vz keeps Ethernet's 1500 (a datagram a frame).
	NetMTU = 65520
)

// NetConfig is the user-space network of one VM: alone, or a member of
// n.Fabric; mtu is the link's.
func NetConfig(n Network, mtu int, log *zap.Logger) usernet.Config {
	mac, _ := net.ParseMAC(netGatewayMAC)
	gw, host := netip.MustParseAddr(netGateway), netip.MustParseAddr(netHost)
	return usernet.Config{Subnet: netip.MustParsePrefix(netSubnet), Gateway: gw,
		DNS: netip.MustParseAddr(netDNS), GatewayMAC: mac, MTU: mtu,
		Names:        map[string]netip.Addr{"gateway." + netDomain: gw, HostAlias: host},
		HostLoopback: host, Guest: netip.MustParsePrefix(netGuest).Addr(),
		Fabric: n.Fabric, Member: n.Member, Log: log}
}

// GuestNet is the guest's side of NetConfig, for its kernel command line.
func GuestNet() agentproto.NetConfig {
	return agentproto.NetConfig{Mode: agentproto.NetStatic, Addr: netip.MustParsePrefix(netGuest),
		Gateway: netip.MustParseAddr(netGateway), DNS: []netip.Addr{netip.MustParseAddr(netDNS)}}
}
