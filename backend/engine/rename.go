package engine

import (
	"context"
	"fmt"
	"slices"
)

// Rename gives container id a new name (Docker's rename; Compose renames the container it made
// to replace another). The name must be valid and not in use; the container may be in any state.
// On its user-defined networks the new name resolves instead of the old one.
func (e *Engine) Rename(ctx context.Context, id, name string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	name = trimSlash(name)
	c, err := e.lookup(id)
	if err != nil {
		return err
	}
	e.nmu.Lock() // before mu and c.mu: the endpoints' names change with the name
	defer e.nmu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	c.mu.Lock()
	cid, old := c.rec.ID, c.rec.Name
	if c.removing {
		c.mu.Unlock()
		return fmt.Errorf("container %s is being removed: %w", old, ErrConflict)
	}
	if old == name {
		c.mu.Unlock()
		return fmt.Errorf("renaming container %s: it already has that name: %w", old, ErrInvalid)
	}
	if other, ok := e.names[name]; ok {
		c.mu.Unlock()
		return fmt.Errorf("the container name %q is already in use by container %s: %w", name, ShortID(other), ErrConflict)
	}
	err = c.commitLocked(func(r *Container) { r.Name = name })
	eps := slices.Clone(c.rec.Networks)
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("renaming container %s: %w", old, err)
	}
	delete(e.names, old)
	e.names[name] = cid
	for _, ep := range eps {
		// Attach replaces the container's attachment in place (same address): only its names change.
		if err := e.fabric.Attach(cid, fabricEndpoint(cid, name, ep)); err != nil {
			e.log.Warn("renaming a container's network names", zapID(cid), zapStr("network", ep.Network), zapErr(err))
		}
	}
	e.emit("container", "rename", cid, name, map[string]string{"oldName": "/" + old})
	return nil
}
