package app

import (
	"context"
	"strings"
	"time"
)

// Network is a container network (the default "bridge" or a user-defined one).
type Network struct {
	ID         string
	Name       string
	Driver     string
	Subnet     string
	Gateway    string
	Labels     map[string]string
	Created    time.Time
	Containers []NetworkMember // the containers on it, running or not, by name
}

// NetworkMember is a container on a network.
type NetworkMember struct {
	ID        string
	Name      string
	State     string
	IPAddress string
	Aliases   []string
}

// ContainerNetwork is a container's attachment to a network: its address there (stable for the
// container's life) and its aliases.
type ContainerNetwork struct {
	Network   string
	NetworkID string
	IPAddress string
	PrefixLen int
	Gateway   string
	Aliases   []string
}

// NetworkCreateRequest is what `skiff network create` sends.
type NetworkCreateRequest struct {
	Name   string
	Subnet string   // IPv4 CIDR; "" picks a free one
	Labels []string // key=value
}

// NetworkBackend is the part of a Backend that manages networks (the engine's and the remote
// one's; a Backend without it answers unavailable).
type NetworkBackend interface {
	ListNetworks(ctx context.Context) ([]Network, error)
	InspectNetwork(ctx context.Context, ref string) (*Network, error)
	CreateNetwork(ctx context.Context, req NetworkCreateRequest) (*Network, error)
	RemoveNetwork(ctx context.Context, ref string) error
	ConnectNetwork(ctx context.Context, network, container string, aliases []string) error
	DisconnectNetwork(ctx context.Context, network, container string, force bool) error
}

// Networks is the network service: list, inspect, create, remove, connect and disconnect.
type Networks struct{ *base }

func (s *Networks) backend() (NetworkBackend, error) {
	nb, ok := s.b.(NetworkBackend)
	if !ok {
		return nil, &Error{Code: CodeUnavailable, Message: "this engine has no networks"}
	}
	return nb, nil
}

// List returns every network, the default first.
func (s *Networks) List() ([]Network, error) {
	nb, err := s.backend()
	if err != nil {
		return nil, err
	}
	ns, err := nb.ListNetworks(s.ctx())
	if ns == nil {
		ns = []Network{}
	}
	return ns, toError(err)
}

// Inspect returns one network by name, ID or unique ID prefix, with its containers.
func (s *Networks) Inspect(ref string) (*Network, error) {
	if ref == "" {
		return nil, invalid("a network name or ID is required")
	}
	nb, err := s.backend()
	if err != nil {
		return nil, err
	}
	n, err := nb.InspectNetwork(s.ctx(), ref)
	return n, toError(err)
}

// Create makes a user-defined network.
func (s *Networks) Create(req NetworkCreateRequest) (*Network, error) {
	if req.Name == "" {
		return nil, invalid("a network name is required")
	}
	for _, l := range req.Labels {
		if k, _, _ := strings.Cut(l, "="); k == "" {
			return nil, invalid("invalid label %q: expected key=value", l)
		}
	}
	nb, err := s.backend()
	if err != nil {
		return nil, err
	}
	n, err := nb.CreateNetwork(s.ctx(), req)
	return n, toError(err)
}

// Remove removes a user-defined network nobody is attached to.
func (s *Networks) Remove(ref string) error {
	if ref == "" {
		return invalid("a network name or ID is required")
	}
	nb, err := s.backend()
	if err != nil {
		return err
	}
	return toError(nb.RemoveNetwork(s.ctx(), ref))
}

// Connect attaches a container to a network, with aliases there; a running container reaches it at once.
func (s *Networks) Connect(network, container string, aliases []string) error {
	if network == "" || container == "" {
		return invalid("a network and a container are required")
	}
	nb, err := s.backend()
	if err != nil {
		return err
	}
	return toError(nb.ConnectNetwork(s.ctx(), network, container, aliases))
}

// Disconnect takes a container off a network.
func (s *Networks) Disconnect(network, container string, force bool) error {
	if network == "" || container == "" {
		return invalid("a network and a container are required")
	}
	nb, err := s.backend()
	if err != nil {
		return err
	}
	return toError(nb.DisconnectNetwork(s.ctx(), network, container, force))
}
