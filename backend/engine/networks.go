package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
)

// DefaultNetwork is the network containers join when they name none (Docker's "bridge"). It always
// exists and cannot be removed. On it containers reach each other by address only, as on Docker's
// default bridge; on a user-defined network they also resolve each other's names and aliases.
const DefaultNetwork = "bridge"

// NetworkNone is the network mode of a container without a network device.
const NetworkNone = "none"

// Network is a container network: a segment of the engine's virtual switch (vm.Fabric). Its records
// live in <home>/networks/<id>.json.
type Network struct {
	ID      string            `json:"id"` // 64 hex
	Name    string            `json:"name"`
	Driver  string            `json:"driver"` // "bridge"
	Subnet  string            `json:"subnet"` // IPv4 CIDR, e.g. 172.18.0.0/16
	Gateway string            `json:"gateway"`
	Labels  map[string]string `json:"labels,omitempty"`
	Created time.Time         `json:"created"`
}

// NetworkCreateOptions is what a network is created from. Subnet empty: the next free /16 of
// 172.18.0.0–172.31.255.255 (then /20s of 192.168.0.0/16).
type NetworkCreateOptions struct {
	Name   string            `json:"name"`
	Driver string            `json:"driver,omitempty"` // "" or "bridge"
	Subnet string            `json:"subnet,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
}

// NetworkOptions asks for a container's attachment to a network at create or connect: the
// network's name or ID (or prefix), the container's aliases there and, optionally, its address.
type NetworkOptions struct {
	Network   string   `json:"network"`
	Aliases   []string `json:"aliases,omitempty"`
	IPAddress string   `json:"ipAddress,omitempty"`
}

// Endpoint is a container's attachment to a network, as recorded: its address is stable for the
// container's life.
type Endpoint struct {
	NetworkID string   `json:"networkID"`
	Network   string   `json:"network"` // its name
	IPAddress string   `json:"ipAddress"`
	PrefixLen int      `json:"prefixLen"`
	Gateway   string   `json:"gateway"`
	Aliases   []string `json:"aliases,omitempty"`
}

const networksDir = "networks"

var netNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)

// reservedNets are the prefixes a network's subnet may not overlap: each VM's own link
// (10.0.2.0/24), loopback, link-local, multicast and reserved space.
var reservedNets = []netip.Prefix{
	netip.MustParsePrefix("10.0.2.0/24"), netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("0.0.0.0/8"), netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("224.0.0.0/3"),
}

func (e *Engine) networkPath(id string) string {
	return filepath.Join(e.home, networksDir, id+".json")
}

// loadNetworks reads the network records (creating the default network the first time).
func (e *Engine) loadNetworks() error {
	dir := filepath.Join(e.home, networksDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading %s: %w", dir, err)
	}
	e.nets = map[string]*Network{}
	for _, ent := range ents {
		if !strings.HasSuffix(ent.Name(), ".json") || strings.HasPrefix(ent.Name(), ".") {
			continue
		}
		p := filepath.Join(dir, ent.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			e.log.Warn("skipping unreadable network record", zap.String("path", p), zap.Error(err))
			continue
		}
		var n Network
		if err := json.Unmarshal(b, &n); err != nil || n.ID+".json" != ent.Name() {
			e.log.Warn("skipping corrupt network record", zap.String("path", p), zap.Error(err))
			continue
		}
		e.nets[n.ID] = &n
	}
	if e.networkByNameLocked(DefaultNetwork) == nil {
		n := &Network{ID: NewID(), Name: DefaultNetwork, Driver: "bridge", Subnet: "172.17.0.0/16",
			Gateway: "172.17.0.1", Created: time.Now().UTC()}
		if err := e.saveNetwork(n); err != nil {
			return err
		}
		e.nets[n.ID] = n
	}
	return nil
}

func (e *Engine) saveNetwork(n *Network) error {
	b, err := json.MarshalIndent(n, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding network %s: %w", n.Name, err)
	}
	if err := writeFileAtomic(e.networkPath(n.ID), b, 0o600); err != nil {
		return fmt.Errorf("writing network %s: %w", n.Name, err)
	}
	return nil
}

func (e *Engine) networkByNameLocked(name string) *Network {
	for _, n := range e.nets {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// networkLocked finds a network by name, full ID or unique ID prefix; e.nmu is held.
func (e *Engine) networkLocked(ref string) (*Network, error) {
	if ref == "" {
		return nil, fmt.Errorf("network \"\": %w", ErrNotFound)
	}
	if n := e.networkByNameLocked(ref); n != nil {
		return n, nil
	}
	if n, ok := e.nets[ref]; ok {
		return n, nil
	}
	var found *Network
	for id, n := range e.nets {
		if strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, fmt.Errorf("network %q: the prefix matches more than one network: %w", ref, ErrConflict)
			}
			found = n
		}
	}
	if found == nil {
		return nil, fmt.Errorf("no such network %q: %w", ref, ErrNotFound)
	}
	return found, nil
}

func cloneNetwork(n *Network) Network {
	out := *n
	out.Labels = copyLabels(n.Labels)
	return out
}

// CreateNetwork makes a user-defined network. A name in use is ErrConflict; a bad name, driver or
// subnet (not IPv4, overlapping another network or the VMs' own link) is ErrInvalid.
func (e *Engine) CreateNetwork(ctx context.Context, opts NetworkCreateOptions) (*Network, error) {
	if !netNameRE.MatchString(opts.Name) {
		return nil, fmt.Errorf("network name %q: want 1-128 of [a-zA-Z0-9_.-], starting with a letter or digit: %w", opts.Name, ErrInvalid)
	}
	if opts.Name == NetworkNone || opts.Name == "host" || opts.Name == "default" {
		return nil, fmt.Errorf("network name %q is reserved: %w", opts.Name, ErrConflict)
	}
	if opts.Driver != "" && opts.Driver != "bridge" {
		return nil, fmt.Errorf("network driver %q: Skiff has only bridge networks: %w", opts.Driver, ErrNotSupported)
	}
	e.nmu.Lock()
	defer e.nmu.Unlock()
	if e.nets == nil {
		return nil, ErrClosed
	}
	if n := e.networkByNameLocked(opts.Name); n != nil {
		return nil, fmt.Errorf("network with name %s already exists (%s): %w", opts.Name, ShortID(n.ID), ErrConflict)
	}
	var subnet netip.Prefix
	if opts.Subnet != "" {
		p, err := netip.ParsePrefix(opts.Subnet)
		if err != nil || !p.Addr().Is4() || p.Bits() > 29 || p.Bits() < 8 {
			return nil, fmt.Errorf("subnet %q: want an IPv4 CIDR from /8 to /29: %w", opts.Subnet, ErrInvalid)
		}
		subnet = p.Masked()
		if err := e.subnetFreeLocked(subnet); err != nil {
			return nil, err
		}
	} else {
		subnet = e.nextSubnetLocked()
		if !subnet.IsValid() {
			return nil, fmt.Errorf("no free subnet left for network %s; give one with --subnet: %w", opts.Name, ErrConflict)
		}
	}
	n := &Network{ID: NewID(), Name: opts.Name, Driver: "bridge", Subnet: subnet.String(),
		Gateway: subnet.Addr().Next().String(), Labels: copyLabels(opts.Labels), Created: time.Now().UTC()}
	if err := e.saveNetwork(n); err != nil {
		_ = os.Remove(e.networkPath(n.ID))
		return nil, err
	}
	e.nets[n.ID] = n
	e.emit("network", "create", n.ID, n.Name, map[string]string{"name": n.Name, "type": n.Driver})
	out := cloneNetwork(n)
	return &out, nil
}

func (e *Engine) subnetFreeLocked(p netip.Prefix) error {
	for _, r := range reservedNets {
		if r.Overlaps(p) {
			return fmt.Errorf("subnet %v overlaps %v, which Skiff reserves: %w", p, r, ErrInvalid)
		}
	}
	for _, n := range e.nets {
		if q, err := netip.ParsePrefix(n.Subnet); err == nil && q.Overlaps(p) {
			return fmt.Errorf("subnet %v overlaps network %s (%v): %w", p, n.Name, q, ErrConflict)
		}
	}
	return nil
}

func (e *Engine) nextSubnetLocked() netip.Prefix {
	for b := 18; b <= 31; b++ {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(b), 0, 0}), 16)
		if e.subnetFreeLocked(p) == nil {
			return p
		}
	}
	for c := 0; c < 256; c += 16 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(c), 0}), 20)
		if e.subnetFreeLocked(p) == nil {
			return p
		}
	}
	return netip.Prefix{}
}

// ListNetworks returns every network, the default first, then by name.
func (e *Engine) ListNetworks(ctx context.Context) ([]Network, error) {
	e.nmu.Lock()
	defer e.nmu.Unlock()
	if e.nets == nil {
		return nil, ErrClosed
	}
	out := make([]Network, 0, len(e.nets))
	for _, n := range e.nets {
		out = append(out, cloneNetwork(n))
	}
	slices.SortFunc(out, func(a, b Network) int {
		if (a.Name == DefaultNetwork) != (b.Name == DefaultNetwork) {
			if a.Name == DefaultNetwork {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out, nil
}

// InspectNetwork returns a network by name, ID or unique ID prefix.
func (e *Engine) InspectNetwork(ctx context.Context, ref string) (*Network, error) {
	e.nmu.Lock()
	defer e.nmu.Unlock()
	if e.nets == nil {
		return nil, ErrClosed
	}
	n, err := e.networkLocked(ref)
	if err != nil {
		return nil, err
	}
	out := cloneNetwork(n)
	return &out, nil
}

// NetworkContainers returns the containers attached to the network (any state), by name.
func (e *Engine) NetworkContainers(ctx context.Context, networkID string) []Container {
	all, _ := e.List(ctx, ListOptions{All: true})
	var out []Container
	for _, c := range all {
		for _, ep := range c.Networks {
			if ep.NetworkID == networkID {
				out = append(out, c)
				break
			}
		}
	}
	slices.SortFunc(out, func(a, b Container) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// RemoveNetwork removes a user-defined network. The default network, and a network a container is
// attached to (running or not: disconnect or remove it first), are ErrConflict.
func (e *Engine) RemoveNetwork(ctx context.Context, ref string) error {
	e.nmu.Lock()
	defer e.nmu.Unlock()
	if e.nets == nil {
		return ErrClosed
	}
	n, err := e.networkLocked(ref)
	if err != nil {
		return err
	}
	if n.Name == DefaultNetwork {
		return fmt.Errorf("%s is the default network and cannot be removed: %w", n.Name, ErrConflict)
	}
	if len(e.addrs[n.ID]) > 0 { // attached containers, and those being created
		var names []string
		for _, c := range e.NetworkContainers(ctx, n.ID) {
			names = append(names, c.Name)
		}
		if len(names) == 0 {
			names = []string{"being created"}
		}
		return fmt.Errorf("network %s is in use by container(s) %s: disconnect or remove them first: %w",
			n.Name, strings.Join(names, ", "), ErrConflict)
	}
	if err := os.Remove(e.networkPath(n.ID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing network %s: %w", n.Name, err)
	}
	_ = syncDir(filepath.Dir(e.networkPath(n.ID)))
	delete(e.nets, n.ID)
	e.emit("network", "destroy", n.ID, n.Name, map[string]string{"name": n.Name, "type": n.Driver})
	return nil
}
