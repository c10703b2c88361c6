package app

import (
	"context"
	"strings"
	"time"
)

// Volume is a named volume: a disk of its own (an ext4 image under the engine's data dir that the
// VM of the container using it mounts: owners kept, one running container at a time), or a shared
// folder (a directory shared into each VM that mounts it: several at once, owners not kept).
type Volume struct {
	Name       string
	Driver     string
	Labels     map[string]string
	Options    map[string]string // size=<size> of a disk volume, shared=true of a shared folder
	Created    time.Time
	Anonymous  bool     // made for one container (an image's VOLUME, -v /path)
	Shared     bool     // a shared-folder volume; false: a disk volume
	Mountpoint string   // on the host: a disk volume's ext4 image, a shared folder's directory
	UsedBy     []string // IDs of the containers that mount it
	Size       int64    // bytes it takes on the host: a disk's blocks in use (Inspect only; -1 elsewhere)
}

// VolumeBackend is the part of a Backend that manages volumes (a Backend without it answers
// unavailable).
type VolumeBackend interface {
	ListVolumes(ctx context.Context) ([]Volume, error)
	InspectVolume(ctx context.Context, name string) (*Volume, error)
	// CreateVolume's opts are the driver options (size, shared).
	CreateVolume(ctx context.Context, name string, labels, opts map[string]string) (*Volume, error)
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

// Create makes a volume (a name of "" gets a random one); labels and opts are key=value. The
// options: size=<size> (a disk volume's size, 32G by default), shared=true (a shared-folder volume).
// Creating one that exists returns it.
func (s *Volumes) Create(name string, labels, opts []string) (*Volume, error) {
	vb, err := s.backend()
	if err != nil {
		return nil, err
	}
	lm, err := keyValues("--label", labels)
	if err != nil {
		return nil, err
	}
	om, err := keyValues("--opt", opts)
	if err != nil {
		return nil, err
	}
	v, err := vb.CreateVolume(s.ctx(), name, lm, om)
	return v, toError(err)
}

func keyValues(flag string, kvs []string) (map[string]string, error) {
	var m map[string]string
	for _, l := range kvs {
		k, v, _ := strings.Cut(l, "=")
		if k == "" {
			return nil, invalid("invalid %s %q: expected key=value", flag, l)
		}
		if m == nil {
			m = map[string]string{}
		}
		m[k] = v
	}
	return m, nil
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
