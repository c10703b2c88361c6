package daemon

import (
	"context"
	"strings"

	"github.com/skiff-containers/skiff/app"
	"github.com/skiff-containers/skiff/backend/engine"
)

var _ app.NetworkBackend = (*Backend)(nil)

func (b *Backend) toNetwork(ctx context.Context, n *engine.Network) *app.Network {
	out := &app.Network{ID: n.ID, Name: n.Name, Driver: n.Driver, Subnet: n.Subnet, Gateway: n.Gateway,
		Labels: n.Labels, Created: n.Created, Containers: []app.NetworkMember{}}
	for _, c := range b.e.NetworkContainers(ctx, n.ID) {
		for _, ep := range c.Networks {
			if ep.NetworkID == n.ID {
				out.Containers = append(out.Containers, app.NetworkMember{ID: c.ID, Name: c.Name, State: string(c.State),
					IPAddress: ep.IPAddress, Aliases: ep.Aliases})
			}
		}
	}
	return out
}

// ListNetworks implements app.NetworkBackend.
func (b *Backend) ListNetworks(ctx context.Context) ([]app.Network, error) {
	ns, err := b.e.ListNetworks(ctx)
	if err != nil {
		return nil, classify(err)
	}
	out := make([]app.Network, 0, len(ns))
	for i := range ns {
		out = append(out, *b.toNetwork(ctx, &ns[i]))
	}
	return out, nil
}

// InspectNetwork implements app.NetworkBackend.
func (b *Backend) InspectNetwork(ctx context.Context, ref string) (*app.Network, error) {
	n, err := b.e.InspectNetwork(ctx, ref)
	if err != nil {
		return nil, classify(err)
	}
	return b.toNetwork(ctx, n), nil
}

// CreateNetwork implements app.NetworkBackend.
func (b *Backend) CreateNetwork(ctx context.Context, req app.NetworkCreateRequest) (*app.Network, error) {
	o := engine.NetworkCreateOptions{Name: req.Name, Subnet: req.Subnet}
	for _, l := range req.Labels {
		k, v, _ := strings.Cut(l, "=")
		if o.Labels == nil {
			o.Labels = map[string]string{}
		}
		o.Labels[k] = v
	}
	n, err := b.e.CreateNetwork(ctx, o)
	if err != nil {
		return nil, classify(err)
	}
	return b.toNetwork(ctx, n), nil
}

// RemoveNetwork implements app.NetworkBackend.
func (b *Backend) RemoveNetwork(ctx context.Context, ref string) error {
	return classify(b.e.RemoveNetwork(ctx, ref))
}

// ConnectNetwork implements app.NetworkBackend.
func (b *Backend) ConnectNetwork(ctx context.Context, network, container string, aliases []string) error {
	return classify(b.e.ConnectNetwork(ctx, network, container, engine.NetworkOptions{Aliases: aliases}))
}

// DisconnectNetwork implements app.NetworkBackend.
func (b *Backend) DisconnectNetwork(ctx context.Context, network, container string, force bool) error {
	return classify(b.e.DisconnectNetwork(ctx, network, container, force))
}
