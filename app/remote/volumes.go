package remote

import (
	"context"

	"github.com/skiff-containers/skiff/app"
)

var _ app.VolumeBackend = (*Backend)(nil)

// ListVolumes implements app.VolumeBackend.
func (b *Backend) ListVolumes(ctx context.Context) (vs []app.Volume, err error) {
	return vs, b.call(ctx, "Volumes.List", &vs)
}

// InspectVolume implements app.VolumeBackend.
func (b *Backend) InspectVolume(ctx context.Context, name string) (*app.Volume, error) {
	var v app.Volume
	if err := b.call(ctx, "Volumes.Inspect", &v, name); err != nil {
		return nil, err
	}
	return &v, nil
}

// CreateVolume implements app.VolumeBackend.
func (b *Backend) CreateVolume(ctx context.Context, name string, labels map[string]string) (*app.Volume, error) {
	var ls []string
	for k, v := range labels {
		ls = append(ls, k+"="+v)
	}
	var v app.Volume
	if err := b.call(ctx, "Volumes.Create", &v, name, ls); err != nil {
		return nil, err
	}
	return &v, nil
}

// RemoveVolume implements app.VolumeBackend.
func (b *Backend) RemoveVolume(ctx context.Context, name string, force bool) error {
	return b.call(ctx, "Volumes.Remove", nil, name, force)
}

// PruneVolumes implements app.VolumeBackend.
func (b *Backend) PruneVolumes(ctx context.Context, all bool) ([]string, int64, error) {
	var r app.PruneResult
	err := b.call(ctx, "Volumes.Prune", &r, all)
	return r.Removed, r.Freed, err
}

var _ app.RenameBackend = (*Backend)(nil)

// RenameContainer implements app.RenameBackend.
func (b *Backend) RenameContainer(ctx context.Context, id, name string) error {
	return b.call(ctx, "Containers.Rename", nil, id, name)
}
