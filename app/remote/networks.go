package remote

import (
	"context"

	"github.com/skiff-containers/skiff/app"
)

var _ app.NetworkBackend = (*Backend)(nil)

// ListNetworks implements app.NetworkBackend.
func (b *Backend) ListNetworks(ctx context.Context) (ns []app.Network, err error) {
	return ns, b.call(ctx, "Networks.List", &ns)
}

// InspectNetwork implements app.NetworkBackend.
func (b *Backend) InspectNetwork(ctx context.Context, ref string) (*app.Network, error) {
	var n app.Network
	if err := b.call(ctx, "Networks.Inspect", &n, ref); err != nil {
		return nil, err
	}
	return &n, nil
}

// CreateNetwork implements app.NetworkBackend.
func (b *Backend) CreateNetwork(ctx context.Context, req app.NetworkCreateRequest) (*app.Network, error) {
	var n app.Network
	if err := b.call(ctx, "Networks.Create", &n, req); err != nil {
		return nil, err
	}
	return &n, nil
}

// RemoveNetwork implements app.NetworkBackend.
func (b *Backend) RemoveNetwork(ctx context.Context, ref string) error {
	return b.call(ctx, "Networks.Remove", nil, ref)
}

// ConnectNetwork implements app.NetworkBackend.
func (b *Backend) ConnectNetwork(ctx context.Context, network, container string, aliases []string) error {
	return b.call(ctx, "Networks.Connect", nil, network, container, aliases)
}

// DisconnectNetwork implements app.NetworkBackend.
func (b *Backend) DisconnectNetwork(ctx context.Context, network, container string, force bool) error {
	return b.call(ctx, "Networks.Disconnect", nil, network, container, force)
}
