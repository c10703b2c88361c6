package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
)

// Change kinds, as `docker diff` prints them.
const (
	ChangeModified = agentproto.ChangeModified // "C"
	ChangeAdded    = agentproto.ChangeAdded    // "A"
	ChangeDeleted  = agentproto.ChangeDeleted  // "D"
)

// Change is one path of a container's root that differs from its image.
type Change struct {
	Path string `json:"path"` // absolute, as the container sees it
	Kind string `json:"kind"` // ChangeModified, ChangeAdded or ChangeDeleted
}

// changesTimeout bounds the guest's walk of a container's writable layer.
const changesTimeout = 5 * time.Minute

// Changes lists what container ref changed in its root against its image (`docker diff`), in
// path order: its writable disk's overlay layer, read by the guest agent of the running container
// or, for a stopped one, of a VM of its disks run for the purpose (as CopyFrom does). A container
// created before disks (its root one host directory) has no layer to read: ErrNotSupported.
func (e *Engine) Changes(ctx context.Context, ref string) ([]Change, error) {
	c, err := e.lookup(ref)
	if err != nil {
		return nil, err
	}
	rec := c.snapshot()
	if rec.RootFS != "" {
		return nil, fmt.Errorf("container %s was created before root disks: its root is one directory, with no layer of changes to list: %w",
			rec.Name, ErrNotSupported)
	}
	ctx, cancel := context.WithTimeout(ctx, changesTimeout)
	defer cancel()
	var out []Change
	err = c.inGuest(ctx, func(cl *agentproto.Client) error {
		chs, err := cl.Changes(ctx)
		if err != nil {
			return err
		}
		out = make([]Change, len(chs))
		for i, ch := range chs {
			out[i] = Change{Path: ch.Path, Kind: ch.Kind}
		}
		return nil
	})
	if errors.Is(err, agentproto.ErrNotSupported) {
		return nil, &sentinelErr{fmt.Errorf("changes of %s: %w", rec.Name, err), ErrNotSupported}
	}
	if err != nil {
		return nil, fmt.Errorf("changes of %s: %w", rec.Name, err)
	}
	return out, nil
}
