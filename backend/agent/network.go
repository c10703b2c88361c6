//go:build linux

package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netlink"
	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/agentproto"
)

// setupNetwork brings lo up and configures eth0 (address, default route):
// by DHCP, or from n when it is static. It returns
// the configuration applied.
func setupNetwork(log *zap.Logger, n agentproto.NetConfig) (netConfig, error) {
	if lo, err := netlink.LinkByName("lo"); err == nil {
		_ = netlink.LinkSetUp(lo)
	}
	if n.Mode == agentproto.NetNone {
		return netConfig{}, nil
	}
	var link netlink.Link
	var err error
	for i := 0; i < 100; i++ { // virtio_net may still be probing
		if link, err = netlink.LinkByName("eth0"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return netConfig{}, fmt.Errorf("no eth0: %w", err)
	}
	log.Debug("eth0 found")
	if err := netlink.LinkSetUp(link); err != nil {
		return netConfig{}, fmt.Errorf("bringing eth0 up: %w", err)
	}
	log.Debug("eth0 up")
	if n.Mode == agentproto.NetStatic {
		static := staticConfig(n)
		if err := applyNetConfig(link, static); err != nil {
			return static, err
		}
		log.Info("network up", zap.String("addr", static.Addr.String()), zap.Stringer("gateway", ipStringer(static.Gateway)),
			zap.Int("dns", len(static.DNS)), zap.String("from", "kernel command line"))
		return static, nil
	}
	client, err := nclient4.New("eth0", nclient4.WithTimeout(2*time.Second), nclient4.WithRetry(5))
	if err != nil {
		return netConfig{}, fmt.Errorf("dhcp client: %w", err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lease, err := client.Request(ctx)
	if err != nil {
		return netConfig{}, fmt.Errorf("dhcp on eth0: %w", err)
	}
	ack := lease.ACK
	var search []string
	if ds := ack.DomainSearch(); ds != nil {
		search = ds.Labels
	}
	c, err := leaseConfig(ack.YourIPAddr, ack.SubnetMask(), ack.Router(), ack.DNS(), ack.DomainName(), search)
	if err != nil {
		return netConfig{}, err
	}
	if err := applyNetConfig(link, c); err != nil {
		return c, err
	}
	log.Info("network up", zap.String("addr", c.Addr.String()), zap.Stringer("gateway", ipStringer(c.Gateway)),
		zap.Int("dns", len(c.DNS)), zap.Duration("lease", ack.IPAddressLeaseTime(0)))
	return c, nil
}

// applyNetConfig gives link c's address and default route.
func applyNetConfig(link netlink.Link, c netConfig) error {
	if err := netlink.AddrReplace(link, &netlink.Addr{IPNet: &c.Addr}); err != nil {
		return fmt.Errorf("adding %s to %s: %w", c.Addr.String(), link.Attrs().Name, err)
	}
	if c.Gateway != nil {
		route := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: c.Gateway, Dst: nil}
		if err := netlink.RouteReplace(route); err != nil && !errors.Is(err, errExist) {
			return fmt.Errorf("default route via %s: %w", c.Gateway, err)
		}
	}
	return nil
}

var errExist = errors.New("exists")

type ipStringer net.IP

func (ip ipStringer) String() string { return net.IP(ip).String() }
