package app

import (
	"context"
	"strings"
	"time"
)

// Volume is a named volume: a directory under the engine's data dir that containers mount.
type Volume struct {
	Name       string
	Driver     string
	Labels     map[string]string
	Created    time.Time
	Anonymous  bool     // made for one container (an image's VOLUME, -v /path)
	Mountpoint string   // the host directory holding the data
	UsedBy     []string // IDs of the containers that mount it
	Size       int64    // bytes of content (Inspect only; -1 elsewhere)
}

// VolumeBackend is the part of a Backend that manages volumes (a Backend without it answers
// unavailable).
type VolumeBackend interface {
	ListVolumes(ctx context.Context) ([]Volume, error)
	InspectVolume(ctx context.Context, name string) (*Volume, error)
	CreateVolume(ctx context.Context, name string, labels map[string]string) (*Volume, error)
	RemoveVolume(ctx context.Context, name string, force bool) error
	// PruneVolumes removes the unused volumes: anonymous ones, or all when all is set.
	PruneVolumes(ctx context.Context, all bool) (removed []string, freed int64, err error)
}

// Volumes is the volume service: list, inspect, create, remove and prune.
type Volumes struct{ *base }

func (s *Volumes) backend() (VolumeBackend, error) {
	vb, ok := s.b.(VolumeBackend)
	if !ok {
		return nil, &Error{Code: CodeUnavailable, Message: "this engine has no volumes"}
	}
	return vb, nil
}

// List returns every volume, by name.
func (s *Volumes) List() ([]Volume, error) {
	vb, err := s.backend()
	if err != nil {
		return nil, err
	}
	vs, err := vb.ListVolumes(s.ctx())
	if vs == nil {
		vs = []Volume{}
	}
	return vs, toError(err)
}

// Inspect returns one volume, with its size.
func (s *Volumes) Inspect(name string) (*Volume, error) {
	vb, err := s.backend()
	if err != nil {
		return nil, err
	}
	v, err := vb.InspectVolume(s.ctx(), name)
	return v, toError(err)
}

// Create makes a volume (a name of "" gets a random one); labels are key=value. Creating one that
// exists returns it.
func (s *Volumes) Create(name string, labels []string) (*Volume, error) {
	vb, err := s.backend()
	if err != nil {
		return nil, err
	}
	var lm map[string]string
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		if k == "" {
			return nil, invalid("invalid --label %q: expected key=value", l)
		}
		if lm == nil {
			lm = map[string]string{}
		}
		lm[k] = v
	}
	v, err := vb.CreateVolume(s.ctx(), name, lm)
	return v, toError(err)
}

// Remove removes a volume and its data; one a container mounts is refused (conflict). force: a
// missing volume is no error.
func (s *Volumes) Remove(name string, force bool) error {
	vb, err := s.backend()
	if err != nil {
		return err
	}
	return toError(vb.RemoveVolume(s.ctx(), name, force))
}

// PruneResult is what Prune removed.
type PruneResult struct {
	Removed []string
	Freed   int64
}

// Prune removes the volumes no container mounts: anonymous ones, or every one with all.
func (s *Volumes) Prune(all bool) (*PruneResult, error) {
	vb, err := s.backend()
	if err != nil {
		return nil, err
	}
	removed, freed, err := vb.PruneVolumes(s.ctx(), all)
	if removed == nil {
		removed = []string{}
	}
	return &PruneResult{Removed: removed, Freed: freed}, toError(err)
}
