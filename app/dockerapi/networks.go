package dockerapi

import (
	"net"
	"net/http"

	"github.com/moby/moby/api/types/network"

	"github.com/skiff-containers/skiff/backend/engine"
)

// Skiff has no networks to manage yet: each container's VM has its own NAT. The list shows the
// three networks every Docker engine has, so that clients that look find them; containers are on
// bridge (create refuses the others).
var builtinNetworks = []struct{ name, id, driver string }{
	{"bridge", "skiff-bridge", "bridge"},
	{"host", "skiff-host", "host"},
	{"none", "skiff-none", "null"},
}

func (s *Server) networkInspect(r *http.Request, name, id, driver string) (network.Inspect, error) {
	n := network.Inspect{Network: network.Network{Name: name, ID: id, Scope: "local", Driver: driver, EnableIPv4: name == "bridge",
		IPAM: network.IPAM{Driver: "default", Config: []network.IPAMConfig{}}, Options: map[string]string{}, Labels: map[string]string{}},
		Containers: map[string]network.EndpointResource{}}
	if name != "bridge" {
		return n, nil
	}
	cs, err := s.eng.List(r.Context(), engine.ListOptions{})
	if err != nil {
		return n, err
	}
	for _, c := range cs {
		mac, _ := net.ParseMAC(c.MAC)
		n.Containers[c.ID] = network.EndpointResource{Name: c.Name, MacAddress: network.HardwareAddr(mac)}
	}
	return n, nil
}

func (s *Server) listNetworks(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		fail(w, err)
		return
	}
	if err := f.only("name", "id", "driver", "label"); err != nil {
		fail(w, err)
		return
	}
	out := []network.Summary{}
	for _, b := range builtinNetworks {
		if !f.any("name", func(v string) bool { return v == b.name }) || !f.any("id", func(v string) bool { return v == b.id }) ||
			!f.any("driver", func(v string) bool { return v == b.driver }) || !f.labels(nil) {
			continue
		}
		n, err := s.networkInspect(r, b.name, b.id, b.driver)
		if err != nil {
			fail(w, err)
			return
		}
		out = append(out, network.Summary{Network: n.Network})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getNetwork(w http.ResponseWriter, r *http.Request) {
	ref := r.PathValue("id")
	for _, b := range builtinNetworks {
		if ref == b.name || ref == b.id {
			n, err := s.networkInspect(r, b.name, b.id, b.driver)
			if err != nil {
				fail(w, err)
				return
			}
			writeJSON(w, http.StatusOK, n)
			return
		}
	}
	writeError(w, http.StatusNotFound, "network "+ref+" not found")
}
