package daemon

import (
	"context"

	"github.com/skiff-containers/skiff/app"
	"github.com/skiff-containers/skiff/backend/engine"
)

var _ app.VolumeBackend = (*Backend)(nil)

func toVolume(v *engine.Volume) app.Volume {
	return app.Volume{Name: v.Name, Driver: v.Driver, Labels: v.Labels, Options: v.Options, Created: v.CreatedAt,
		Anonymous: v.Anonymous, Shared: v.Shared, Mountpoint: v.Mountpoint, UsedBy: v.UsedBy, Size: -1}
}

// ListVolumes implements app.VolumeBackend.
func (b *Backend) ListVolumes(ctx context.Context) ([]app.Volume, error) {
	vs, err := b.e.Volumes(ctx)
	if err != nil {
		return nil, classify(err)
	}
	out := make([]app.Volume, 0, len(vs))
	for i := range vs {
		out = append(out, toVolume(&vs[i]))
	}
	return out, nil
}

// InspectVolume implements app.VolumeBackend.
func (b *Backend) InspectVolume(ctx context.Context, name string) (*app.Volume, error) {
	v, err := b.e.InspectVolume(ctx, name)
	if err != nil {
		return nil, classify(err)
	}
	out := toVolume(v)
	if size, err := b.e.VolumeSize(ctx, name); err == nil {
		out.Size = size
	}
	return &out, nil
}

// CreateVolume implements app.VolumeBackend.
func (b *Backend) CreateVolume(ctx context.Context, name string, labels, opts map[string]string) (*app.Volume, error) {
	v, err := b.e.CreateVolume(ctx, engine.VolumeOptions{Name: name, Labels: labels, Options: opts})
	if err != nil {
		return nil, classify(err)
	}
	out := toVolume(v)
	return &out, nil
}

// RemoveVolume implements app.VolumeBackend.
func (b *Backend) RemoveVolume(ctx context.Context, name string, force bool) error {
	return classify(b.e.RemoveVolume(ctx, name, force))
}

// PruneVolumes implements app.VolumeBackend.
func (b *Backend) PruneVolumes(ctx context.Context, all bool) ([]string, int64, error) {
	removed, freed, err := b.e.PruneVolumes(ctx, func(v engine.Volume) bool { return all || v.Anonymous })
	return removed, freed, classify(err)
}
