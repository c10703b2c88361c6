package engine

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"slices"

	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/vm"
)

var aliasRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$`)

// ValidAlias checks a network alias: a DNS name of letters, digits, '_', '.' and '-' (Compose's
// service names are aliases, and may hold '_').
func ValidAlias(s string) error {
	if !aliasRE.MatchString(s) {
		return fmt.Errorf("network alias %q: want 1-253 of letters, digits, '_', '.' and '-', starting with a letter or digit: %w", s, ErrInvalid)
	}
	return nil
}

// noNetwork says the options ask for no network at all (--network none).
func noNetwork(opts []NetworkOptions) bool {
	return len(opts) == 1 && opts[0].Network == NetworkNone
}

// validateNetworks checks the network options that can be checked without the networks.
func validateNetworks(opts []NetworkOptions) error {
	seen := map[string]bool{}
	for _, o := range opts {
		switch o.Network {
		case "host":
			return fmt.Errorf("network host: a container's VM cannot share the host's network: %w", ErrNotSupported)
		case NetworkNone:
			if len(opts) > 1 {
				return fmt.Errorf("network none cannot be combined with other networks: %w", ErrInvalid)
			}
		}
		if seen[o.Network] {
			return fmt.Errorf("network %q given twice: %w", o.Network, ErrInvalid)
		}
		seen[o.Network] = true
		for _, a := range o.Aliases {
			if err := ValidAlias(a); err != nil {
				return err
			}
		}
		if o.IPAddress != "" {
			if a, err := netip.ParseAddr(o.IPAddress); err != nil || !a.Is4() {
				return fmt.Errorf("IP address %q: want an IPv4 address: %w", o.IPAddress, ErrInvalid)
			}
		}
	}
	return nil
}

// fabricEndpoint is ep as the switch sees it: on the default network a container has no names
// (as on Docker's default bridge); elsewhere its name, short ID and aliases.
func fabricEndpoint(id, name string, ep Endpoint) vm.FabricEndpoint {
	addr, _ := netip.ParseAddr(ep.IPAddress)
	out := vm.FabricEndpoint{Segment: ep.NetworkID, Subnet: netip.PrefixFrom(addr, ep.PrefixLen).Masked(), Addr: addr}
	if ep.Network != DefaultNetwork {
		out.Names = append([]string{name, ShortID(id)}, ep.Aliases...)
	}
	return out
}

// attachLocked gives container id (named name) an endpoint on the network o names, at o.IPAddress
// or the lowest free address, and puts it on the switch; e.nmu is held.
func (e *Engine) attachLocked(id, name string, o NetworkOptions) (Endpoint, error) {
	ref := o.Network
	if ref == "" || ref == "default" {
		ref = DefaultNetwork
	}
	n, err := e.networkLocked(ref)
	if err != nil {
		return Endpoint{}, err
	}
	subnet, err := netip.ParsePrefix(n.Subnet)
	if err != nil {
		return Endpoint{}, fmt.Errorf("network %s has a bad subnet %q: %w", n.Name, n.Subnet, ErrInvalid)
	}
	gw, _ := netip.ParseAddr(n.Gateway)
	used := e.addrs[n.ID]
	var addr netip.Addr
	if o.IPAddress != "" {
		addr, _ = netip.ParseAddr(o.IPAddress)
		if !subnet.Contains(addr) || addr == gw || addr == subnet.Addr() {
			return Endpoint{}, fmt.Errorf("IP address %s is not a free host address of network %s (%s): %w", addr, n.Name, n.Subnet, ErrInvalid)
		}
		if holder, ok := used[addr]; ok && holder != id {
			return Endpoint{}, fmt.Errorf("IP address %s of network %s is taken by container %s: %w", addr, n.Name, ShortID(holder), ErrConflict)
		}
	} else {
		for a := subnet.Addr().Next(); subnet.Contains(a); a = a.Next() {
			if _, ok := used[a]; !ok && a != gw && subnet.Contains(a.Next()) { // not the broadcast address
				addr = a
				break
			}
		}
		if !addr.IsValid() {
			return Endpoint{}, fmt.Errorf("network %s (%s) has no free address: %w", n.Name, n.Subnet, ErrConflict)
		}
	}
	ep := Endpoint{NetworkID: n.ID, Network: n.Name, IPAddress: addr.String(), PrefixLen: subnet.Bits(),
		Gateway: n.Gateway, Aliases: slices.Clone(o.Aliases)}
	if err := e.plugLocked(id, name, ep); err != nil {
		return Endpoint{}, err
	}
	return ep, nil
}

// plugLocked records ep's address and puts it on the switch; e.nmu is held.
func (e *Engine) plugLocked(id, name string, ep Endpoint) error {
	if err := e.fabric.Attach(id, fabricEndpoint(id, name, ep)); err != nil {
		return fmt.Errorf("attaching %s to network %s: %v: %w", name, ep.Network, err, ErrConflict)
	}
	addr, _ := netip.ParseAddr(ep.IPAddress)
	if e.addrs[ep.NetworkID] == nil {
		e.addrs[ep.NetworkID] = map[netip.Addr]string{}
	}
	e.addrs[ep.NetworkID][addr] = id
	return nil
}

// detachLocked takes ep of container id off the switch and frees its address; e.nmu is held.
func (e *Engine) detachLocked(id string, ep Endpoint) {
	e.fabric.Detach(id, ep.NetworkID)
	addr, _ := netip.ParseAddr(ep.IPAddress)
	if e.addrs[ep.NetworkID][addr] == id {
		delete(e.addrs[ep.NetworkID], addr)
	}
}

// createEndpoints attaches a new container to the networks opts name (the default one when
// none); release undoes it (a create that fails later).
func (e *Engine) createEndpoints(id, name string, opts []NetworkOptions) (eps []Endpoint, release func(), err error) {
	e.nmu.Lock()
	defer e.nmu.Unlock()
	release = func() {
		e.nmu.Lock()
		defer e.nmu.Unlock()
		for _, ep := range eps {
			e.detachLocked(id, ep)
		}
	}
	if e.nets == nil {
		return nil, nil, ErrClosed
	}
	if noNetwork(opts) {
		return []Endpoint{}, func() {}, nil
	}
	if len(opts) == 0 {
		opts = []NetworkOptions{{Network: DefaultNetwork}}
	}
	for _, o := range opts {
		ep, err := e.attachLocked(id, name, o)
		if err != nil {
			for _, done := range eps {
				e.detachLocked(id, done)
			}
			return nil, nil, err
		}
		eps = append(eps, ep)
	}
	return eps, release, nil
}

// restoreEndpoints puts the loaded containers back on the switch at their recorded addresses (run
// once by Open); a record from before networks existed joins the default network.
func (e *Engine) restoreEndpoints() {
	e.nmu.Lock()
	defer e.nmu.Unlock()
	for _, c := range e.ctrs {
		c.mu.Lock()
		rec := &c.rec
		if rec.Networks == nil && !noNetwork(rec.Config.Networks) {
			if ep, err := e.attachLocked(rec.ID, rec.Name, NetworkOptions{Network: DefaultNetwork}); err == nil {
				c.recordLocked(func(r *Container) { r.Networks = []Endpoint{ep} })
			}
			c.mu.Unlock()
			continue
		}
		var keep []Endpoint
		for _, ep := range rec.Networks {
			if _, ok := e.nets[ep.NetworkID]; !ok {
				e.log.Warn("container is attached to a network that no longer exists; dropping it",
					zapID(rec.ID), zap.String("network", ep.Network))
				continue
			}
			if err := e.plugLocked(rec.ID, rec.Name, ep); err != nil {
				e.log.Warn("restoring a container's network", zapID(rec.ID), zap.Error(err))
				continue
			}
			keep = append(keep, ep)
		}
		if len(keep) != len(rec.Networks) {
			c.recordLocked(func(r *Container) { r.Networks = keep })
		}
		c.mu.Unlock()
	}
}

// forgetEndpoints takes a removed container off every network.
func (e *Engine) forgetEndpoints(id string, eps []Endpoint) {
	e.nmu.Lock()
	defer e.nmu.Unlock()
	for _, ep := range eps {
		e.detachLocked(id, ep)
	}
	e.fabric.Forget(id)
}

// ConnectNetwork attaches a container to a network (o.Network is ignored; network names it). A
// running container reaches the network at once. A container already on it, or without a network
// (--network none), is ErrConflict.
func (e *Engine) ConnectNetwork(ctx context.Context, network, container string, o NetworkOptions) error {
	o.Network = network
	if err := validateNetworks([]NetworkOptions{o}); err != nil {
		return err
	}
	if network == NetworkNone {
		return fmt.Errorf("a container cannot be connected to network none: %w", ErrConflict)
	}
	c, err := e.lookup(container)
	if err != nil {
		return err
	}
	e.nmu.Lock()
	defer e.nmu.Unlock()
	if e.nets == nil {
		return ErrClosed
	}
	n, err := e.networkLocked(network)
	if err != nil {
		return err
	}
	rec := c.snapshot()
	if noNetwork(rec.Config.Networks) {
		return fmt.Errorf("container %s was created without a network (none): %w", rec.Name, ErrConflict)
	}
	for _, ep := range rec.Networks {
		if ep.NetworkID == n.ID {
			return fmt.Errorf("container %s is already attached to network %s: %w", rec.Name, n.Name, ErrConflict)
		}
	}
	o.Network = n.ID
	ep, err := e.attachLocked(rec.ID, rec.Name, o)
	if err != nil {
		return err
	}
	c.mu.Lock()
	err = c.commitLocked(func(r *Container) { r.Networks = append(r.Networks, ep) })
	c.mu.Unlock()
	if err != nil {
		e.detachLocked(rec.ID, ep)
		return err
	}
	e.emit("network", "connect", n.ID, n.Name, map[string]string{"container": rec.ID, "name": n.Name, "type": n.Driver})
	return nil
}

// DisconnectNetwork takes a container off a network; a container not on it is ErrNotFound (unless
// force).
func (e *Engine) DisconnectNetwork(ctx context.Context, network, container string, force bool) error {
	c, err := e.lookup(container)
	if err != nil {
		return err
	}
	e.nmu.Lock()
	defer e.nmu.Unlock()
	if e.nets == nil {
		return ErrClosed
	}
	n, err := e.networkLocked(network)
	if err != nil {
		return err
	}
	rec := c.snapshot()
	i := slices.IndexFunc(rec.Networks, func(ep Endpoint) bool { return ep.NetworkID == n.ID })
	if i < 0 {
		if force {
			return nil
		}
		return fmt.Errorf("container %s is not connected to network %s: %w", rec.Name, n.Name, ErrNotFound)
	}
	ep := rec.Networks[i]
	c.mu.Lock()
	err = c.commitLocked(func(r *Container) {
		r.Networks = slices.DeleteFunc(r.Networks, func(x Endpoint) bool { return x.NetworkID == n.ID })
	})
	c.mu.Unlock()
	if err != nil {
		return err
	}
	e.detachLocked(rec.ID, ep)
	e.emit("network", "disconnect", n.ID, n.Name, map[string]string{"container": rec.ID, "name": n.Name, "type": n.Driver})
	return nil
}
