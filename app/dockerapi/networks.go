package dockerapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/skiff-containers/skiff/backend/engine"
)

// networkEngine is the part of the engine the network endpoints use.
type networkEngine interface {
	CreateNetwork(ctx context.Context, opts engine.NetworkCreateOptions) (*engine.Network, error)
	ListNetworks(ctx context.Context) ([]engine.Network, error)
	InspectNetwork(ctx context.Context, ref string) (*engine.Network, error)
	RemoveNetwork(ctx context.Context, ref string) error
	NetworkContainers(ctx context.Context, networkID string) []engine.Container
	ConnectNetwork(ctx context.Context, network, container string, o engine.NetworkOptions) error
	DisconnectNetwork(ctx context.Context, network, container string, force bool) error
}

// The engine's networks are bridge (the default) and the user-defined ones. host and none are
// listed, as every Docker engine has them, with no state: a container cannot join host, and
// none is a container without a network device.
var builtinNetworks = []struct{ name, id, driver string }{
	{"host", "skiff-host", "host"},
	{"none", "skiff-none", "null"},
}

func (s *Server) networkRoutes() {
	m := s.mux
	m.HandleFunc("GET /networks", s.listNetworks)
	m.HandleFunc("GET /networks/{id}", s.getNetwork)
	m.HandleFunc("POST /networks/create", s.createNetwork)
	m.HandleFunc("POST /networks/prune", s.pruneNetworks)
	m.HandleFunc("DELETE /networks/{id}", s.removeNetwork)
	m.HandleFunc("POST /networks/{id}/connect", s.connectNetwork)
	m.HandleFunc("POST /networks/{id}/disconnect", s.disconnectNetwork)
}

func builtinInspect(name, id, driver string) network.Inspect {
	return network.Inspect{Network: network.Network{Name: name, ID: id, Scope: "local", Driver: driver,
		IPAM: network.IPAM{Driver: "default", Config: []network.IPAMConfig{}}, Options: map[string]string{}, Labels: map[string]string{}},
		Containers: map[string]network.EndpointResource{}}
}

func (s *Server) networkInspect(ctx context.Context, n *engine.Network) network.Inspect {
	subnet, _ := netip.ParsePrefix(n.Subnet)
	gw, _ := netip.ParseAddr(n.Gateway)
	labels := n.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	out := network.Inspect{Network: network.Network{Name: n.Name, ID: n.ID, Created: n.Created, Scope: "local",
		Driver: n.Driver, EnableIPv4: true, Attachable: n.Name != engine.DefaultNetwork,
		IPAM:    network.IPAM{Driver: "default", Options: map[string]string{}, Config: []network.IPAMConfig{{Subnet: subnet, Gateway: gw}}},
		Options: map[string]string{}, Labels: labels},
		Containers: map[string]network.EndpointResource{}}
	if n.Name == engine.DefaultNetwork {
		out.Options["com.docker.network.bridge.default_bridge"] = "true"
	}
	for _, c := range s.eng.NetworkContainers(ctx, n.ID) {
		if !isUp(c.State) { // Docker lists the running ones
			continue
		}
		for _, ep := range c.Networks {
			if ep.NetworkID != n.ID {
				continue
			}
			addr, _ := netip.ParseAddr(ep.IPAddress)
			mac, _ := net.ParseMAC(c.MAC)
			out.Containers[c.ID] = network.EndpointResource{Name: c.Name, EndpointID: endpointID(c.ID, n.ID),
				MacAddress: network.HardwareAddr(mac), IPv4Address: netip.PrefixFrom(addr, ep.PrefixLen)}
		}
	}
	return out
}

// endpointID names a container's endpoint on a network, stably.
func endpointID(containerID, networkID string) string {
	if len(containerID) < 32 || len(networkID) < 32 {
		return containerID + networkID
	}
	return containerID[:32] + networkID[:32]
}

func (s *Server) listNetworks(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		fail(w, err)
		return
	}
	if err := f.only("name", "id", "driver", "label", "type", "scope", "dangling"); err != nil {
		fail(w, err)
		return
	}
	nets, err := s.eng.ListNetworks(r.Context())
	if err != nil {
		fail(w, err)
		return
	}
	var all []network.Inspect
	for i := range nets {
		all = append(all, s.networkInspect(r.Context(), &nets[i]))
	}
	for _, b := range builtinNetworks {
		all = append(all, builtinInspect(b.name, b.id, b.driver))
	}
	out := []network.Summary{}
	for _, n := range all {
		builtin := n.Name == engine.DefaultNetwork || n.Driver != "bridge"
		if !f.any("name", func(v string) bool { return strings.Contains(n.Name, v) }) ||
			!f.any("id", func(v string) bool { return strings.HasPrefix(n.ID, v) }) ||
			!f.any("driver", func(v string) bool { return v == n.Driver }) ||
			!f.any("scope", func(v string) bool { return v == "local" }) ||
			!f.any("type", func(v string) bool { return (v == "builtin") == builtin }) ||
			!f.any("dangling", func(v string) bool { return (v == "true" || v == "1") == (len(n.Containers) == 0 && !builtin) }) ||
			!f.labels(n.Labels) {
			continue
		}
		out = append(out, network.Summary{Network: n.Network})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getNetwork(w http.ResponseWriter, r *http.Request) {
	ref := r.PathValue("id")
	for _, b := range builtinNetworks {
		if ref == b.name || ref == b.id {
			writeJSON(w, http.StatusOK, builtinInspect(b.name, b.id, b.driver))
			return
		}
	}
	n, err := s.eng.InspectNetwork(r.Context(), ref)
	if err != nil {
		networkErr(w, ref, err)
		return
	}
	writeJSON(w, http.StatusOK, s.networkInspect(r.Context(), n))
}

// networkErr answers an engine error about network ref with Docker's wording for a missing one.
func networkErr(w http.ResponseWriter, ref string, err error) {
	if errors.Is(err, engine.ErrNotFound) && !strings.Contains(err.Error(), "container") {
		writeError(w, http.StatusNotFound, "network "+ref+" not found")
		return
	}
	fail(w, err)
}

func (s *Server) createNetwork(w http.ResponseWriter, r *http.Request) {
	var req network.CreateRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		fail(w, badRequest("network create: %v", err))
		return
	}
	o := engine.NetworkCreateOptions{Name: req.Name, Driver: req.Driver, Labels: req.Labels}
	switch {
	case req.Name == "":
		fail(w, badRequest("network create: a name is required"))
		return
	case req.Internal:
		fail(w, badRequest("Internal: internal networks are not supported by Skiff yet"))
		return
	case req.EnableIPv6 != nil && *req.EnableIPv6:
		fail(w, badRequest("EnableIPv6: Skiff's networks are IPv4 only"))
		return
	case req.Scope != "" && req.Scope != "local":
		fail(w, badRequest("Scope %q: Skiff's networks are local", req.Scope))
		return
	case req.ConfigOnly || req.ConfigFrom != nil || req.Ingress:
		fail(w, badRequest("ConfigOnly/ConfigFrom/Ingress: not supported by Skiff"))
		return
	case len(req.Options) > 0:
		keys := make([]string, 0, len(req.Options))
		for k := range req.Options {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fail(w, badRequest("Options %s: driver options are not supported by Skiff", strings.Join(keys, ", ")))
		return
	}
	if req.IPAM != nil {
		if len(req.IPAM.Config) > 1 {
			fail(w, badRequest("IPAM.Config: Skiff's networks have one subnet"))
			return
		}
		if len(req.IPAM.Config) == 1 {
			c := req.IPAM.Config[0]
			if c.IPRange.IsValid() || c.Gateway.IsValid() || len(c.AuxAddress) > 0 {
				fail(w, badRequest("IPAM.Config: only Subnet is supported by Skiff (the gateway is its first address)"))
				return
			}
			if c.Subnet.IsValid() {
				o.Subnet = c.Subnet.String()
			}
		}
	}
	n, err := s.eng.CreateNetwork(r.Context(), o)
	if err != nil {
		if errors.Is(err, engine.ErrConflict) && strings.Contains(err.Error(), "already exists") {
			writeError(w, http.StatusConflict, fmt.Sprintf("network with name %s already exists", req.Name))
			return
		}
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, network.CreateResponse{ID: n.ID})
}

func (s *Server) removeNetwork(w http.ResponseWriter, r *http.Request) {
	ref := r.PathValue("id")
	for _, b := range builtinNetworks {
		if ref == b.name || ref == b.id {
			writeError(w, http.StatusForbidden, b.name+" is a pre-defined network and cannot be removed")
			return
		}
	}
	if err := s.eng.RemoveNetwork(r.Context(), ref); err != nil {
		networkErr(w, ref, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) pruneNetworks(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		fail(w, err)
		return
	}
	if err := f.only("label"); err != nil {
		fail(w, err)
		return
	}
	nets, err := s.eng.ListNetworks(r.Context())
	if err != nil {
		fail(w, err)
		return
	}
	out := network.PruneReport{NetworksDeleted: []string{}}
	for _, n := range nets {
		if n.Name == engine.DefaultNetwork || !f.labels(n.Labels) || len(s.eng.NetworkContainers(r.Context(), n.ID)) > 0 {
			continue
		}
		if err := s.eng.RemoveNetwork(r.Context(), n.ID); err == nil {
			out.NetworksDeleted = append(out.NetworksDeleted, n.Name)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) connectNetwork(w http.ResponseWriter, r *http.Request) {
	var req network.ConnectRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		fail(w, badRequest("network connect: %v", err))
		return
	}
	o, err := endpointOptions(r.PathValue("id"), req.EndpointConfig)
	if err != nil {
		fail(w, err)
		return
	}
	if err := s.eng.ConnectNetwork(r.Context(), r.PathValue("id"), req.Container, o); err != nil {
		networkErr(w, r.PathValue("id"), err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) disconnectNetwork(w http.ResponseWriter, r *http.Request) {
	var req network.DisconnectRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		fail(w, badRequest("network disconnect: %v", err))
		return
	}
	if err := s.eng.DisconnectNetwork(r.Context(), r.PathValue("id"), req.Container, req.Force); err != nil {
		networkErr(w, r.PathValue("id"), err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// endpointOptions maps an endpoint's settings (create's EndpointsConfig, connect's EndpointConfig)
// onto the engine's: aliases and an IPv4 address. Links are accepted and not acted on: on a
// network the linked containers already resolve by name and alias (Compose links a one-off
// container to its service's containers so). Driver options and a MAC address are refused.
func endpointOptions(net string, es *network.EndpointSettings) (engine.NetworkOptions, error) {
	o := engine.NetworkOptions{Network: net}
	if es == nil {
		return o, nil
	}
	if len(es.MacAddress) > 0 {
		return o, badRequest("EndpointSettings.MacAddress of network %s: not supported by Skiff", net)
	}
	if es.IPAddress.IsValid() {
		o.IPAddress = es.IPAddress.String()
	}
	if len(es.DriverOpts) > 0 {
		return o, badRequest("EndpointSettings.DriverOpts of network %s: not supported by Skiff", net)
	}
	o.Aliases = slices.Clone(es.Aliases)
	if es.IPAMConfig != nil {
		if es.IPAMConfig.IPv6Address.IsValid() || len(es.IPAMConfig.LinkLocalIPs) > 0 {
			return o, badRequest("EndpointSettings.IPAMConfig of network %s: Skiff's networks are IPv4 only", net)
		}
		if es.IPAMConfig.IPv4Address.IsValid() {
			o.IPAddress = es.IPAMConfig.IPv4Address.String()
		}
	}
	return o, nil
}

// createNetworks maps a create request's NetworkMode and EndpointsConfig onto the engine's
// networks: the NetworkMode's network first, then the others by name; default and bridge are the
// default network; none is no network; host and container:<id> are refused.
func createNetworks(mode string, nc *network.NetworkingConfig) ([]engine.NetworkOptions, error) {
	switch {
	case mode == "host":
		return nil, badRequest("HostConfig.NetworkMode %q: a container's VM cannot share the host's network", mode)
	case strings.HasPrefix(mode, "container:"):
		return nil, badRequest("HostConfig.NetworkMode %q: sharing another container's network is not supported by Skiff", mode)
	}
	var eps map[string]*network.EndpointSettings
	if nc != nil {
		eps = nc.EndpointsConfig
	}
	var names []string
	if mode != "" && mode != "default" {
		names = append(names, mode)
	}
	rest := make([]string, 0, len(eps))
	for k := range eps {
		if k != mode && !(mode == "default" && k == engine.DefaultNetwork) {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	names = append(names, rest...)
	var out []engine.NetworkOptions
	for _, n := range names {
		o, err := endpointOptions(n, eps[n])
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// endpointSettings is a container's NetworkSettings.Networks: each network by name, its address
// while the container runs.
func endpointSettings(c *engine.Container) map[string]*network.EndpointSettings {
	out := map[string]*network.EndpointSettings{}
	mac, _ := net.ParseMAC(c.MAC)
	for _, ep := range c.Networks {
		es := &network.EndpointSettings{NetworkID: ep.NetworkID, Aliases: slices.Clone(ep.Aliases),
			DNSNames: []string{}}
		if es.Aliases == nil {
			es.Aliases = []string{}
		}
		if ep.Network != engine.DefaultNetwork {
			es.DNSNames = append([]string{c.Name, engine.ShortID(c.ID)}, ep.Aliases...)
		}
		if isUp(c.State) {
			es.EndpointID = endpointID(c.ID, ep.NetworkID)
			es.IPAddress, _ = netip.ParseAddr(ep.IPAddress)
			es.Gateway, _ = netip.ParseAddr(ep.Gateway)
			es.IPPrefixLen = ep.PrefixLen
			es.MacAddress = network.HardwareAddr(mac)
		}
		out[ep.Network] = es
	}
	return out
}

// networkMode is HostConfig.NetworkMode: the container's first network, or none.
func networkMode(c *engine.Container) container.NetworkMode {
	if len(c.Config.Networks) == 1 && c.Config.Networks[0].Network == engine.NetworkNone {
		return "none"
	}
	if len(c.Networks) > 0 {
		return container.NetworkMode(c.Networks[0].Network)
	}
	return "bridge"
}
