package agent

import (
	"fmt"
	"net"
	"strings"

	"github.com/skiff-containers/skiff/backend/agentproto"
)

// netConfig is an interface configuration obtained by DHCP.
type netConfig struct {
	Addr    net.IPNet
	Gateway net.IP
	DNS     []net.IP
	Search  []string
}

// leaseConfig turns the fields of a DHCP ACK into a netConfig.
func leaseConfig(ip net.IP, mask net.IPMask, routers, dns []net.IP, domain string, search []string) (netConfig, error) {
	if ip == nil || ip.To4() == nil || ip.IsUnspecified() {
		return netConfig{}, fmt.Errorf("lease without an IPv4 address")
	}
	if mask == nil {
		mask = ip.DefaultMask()
	}
	c := netConfig{Addr: net.IPNet{IP: ip.To4(), Mask: mask}}
	for _, r := range routers {
		if r.To4() != nil && !r.IsUnspecified() {
			c.Gateway = r.To4()
			break
		}
	}
	c.DNS = dns
	if domain != "" {
		c.Search = append(c.Search, domain)
	}
	for _, s := range search {
		if s != domain && s != "" {
			c.Search = append(c.Search, s)
		}
	}
	return c, nil
}

// resolvConf renders /etc/resolv.conf for c.
func (c netConfig) resolvConf() string {
	var b strings.Builder
	if len(c.Search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(c.Search, " "))
	}
	for _, ip := range c.DNS {
		fmt.Fprintf(&b, "nameserver %s\n", ip)
	}
	return b.String()
}

// staticConfig is the static configuration the host passed (skiff.net=static:…).
func staticConfig(n agentproto.NetConfig) netConfig {
	c := netConfig{Addr: net.IPNet{IP: n.Addr.Addr().AsSlice(), Mask: net.CIDRMask(n.Addr.Bits(), 32)},
		Gateway: n.Gateway.AsSlice()}
	for _, d := range n.DNS {
		c.DNS = append(c.DNS, d.AsSlice())
	}
	return c
}
