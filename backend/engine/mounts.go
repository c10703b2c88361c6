package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
)

// MountChange says how AddMount or RemoveMount reaches a container.
type MountChange string

const (
	// MountLive: the container runs and its VM takes the change as it runs (a share hot-plugged and
	// mounted, or unmounted): no restart, the workload goes on.
	MountLive MountChange = "live"
	// MountRestart: the container runs on a VM that cannot take a new share (vz, a cold-booted QEMU
	// VM, one started with no shares, whose RAM is its boot snapshot's copy-on-write, or its hot-plug
	// ports all used): the same container's VM is stopped and started again.
	MountRestart MountChange = "restart"
	// MountNextStart: the container does not run; its next start mounts what its record says.
	MountNextStart MountChange = "next-start"
)

// mountAgentTimeout bounds the agent's mount of a hot-plugged share, which the guest kernel may
// take a moment to probe.
const mountAgentTimeout = 20 * time.Second

// MountPlan says how adding a folder to container id would happen now (for a UI to say before).
func (e *Engine) MountPlan(ctx context.Context, id string) (MountChange, error) {
	c, err := e.lookup(id)
	if err != nil {
		return "", err
	}
	plan, _, err := c.mountPlan(true)
	return plan, err
}

// mountPlan is how a mount change reaches c now, with the boot it works on when live. adding: a
// share must be plugged in (removal only unmounts).
func (c *ctr) mountPlan(adding bool) (MountChange, *boot, error) {
	c.mu.Lock()
	if c.removing {
		c.mu.Unlock()
		return "", nil, fmt.Errorf("container %s is being removed: %w", c.rec.Name, ErrConflict)
	}
	if c.rec.State == StatePaused {
		c.mu.Unlock()
		return "", nil, fmt.Errorf("container %s is paused (unpause it to change its folders): %w", c.rec.Name, ErrConflict)
	}
	if c.sup == nil || c.sup.boot == nil { // not running, or between boots: the next boot reads the record
		c.mu.Unlock()
		return MountNextStart, nil, nil
	}
	b := c.sup.boot
	c.mu.Unlock()
	if !adding {
		return MountLive, b, nil
	}
	if sa, ok := b.machine.(vm.ShareAdder); ok && sa.FreeShareSlots() > 0 {
		return MountLive, b, nil
	}
	return MountRestart, b, nil
}

// AddMount gives container id a new bind mount, keeping the container (ID, name, writable layer,
// logs, restart count). m is checked as Create checks it and its source pinned (Mount.Real). A
// running container on a VM that can hot-plug gets it live; otherwise its VM restarts (see
// MountChange). A failure changes nothing: the record is saved only once the mount is in place.
func (e *Engine) AddMount(ctx context.Context, id string, m Mount) (MountChange, error) {
	c, err := e.lookup(id)
	if err != nil {
		return "", err
	}
	if m.Type != "" && m.Type != MountBind {
		return "", fmt.Errorf("adding a %s mount to an existing container: only folders (bind mounts) can be added: %w", m.Type, ErrNotSupported)
	}
	m.Real = ""
	if e.isDockerSocket(m.Source) {
		return "", fmt.Errorf("bind mount %s:%s: the Docker socket is given to a container when it is created, not added later: %w", m.Source, m.Target, ErrNotSupported)
	}
	ms := []Mount{m}
	if err := validateMounts(ms); err != nil {
		return "", err
	}
	m = ms[0]
	c.mountMu.Lock()
	defer c.mountMu.Unlock()
	c.mu.Lock()
	name, cid := c.rec.Name, c.rec.ID
	for _, old := range c.rec.Mounts {
		if old.Target == m.Target {
			c.mu.Unlock()
			return "", fmt.Errorf("container %s already has %s mounted at %s: %w", name, old.Source, m.Target, ErrConflict)
		}
	}
	c.mu.Unlock()
	plan, b, err := c.mountPlan(true)
	if err != nil {
		return "", err
	}
	add := func(r *Container) {
		r.Mounts = append(r.Mounts, m)
		r.Config.Mounts = append(r.Config.Mounts, m)
	}
	undo := func(r *Container) {
		r.Mounts, r.Config.Mounts = dropMount(r.Mounts, m.Target), dropMount(r.Config.Mounts, m.Target)
	}
	switch plan {
	case MountNextStart:
		if err := c.commit(add); err != nil {
			return "", err
		}
	case MountRestart:
		if err := c.restartWith(ctx, cid, add, undo); err != nil {
			return "", err
		}
	case MountLive:
		err := c.plugMount(ctx, b, m)
		if errors.Is(err, vm.ErrNotSupported) { // its last free port went since the plan: restart instead
			plan = MountRestart
			if err := c.restartWith(ctx, cid, add, undo); err != nil {
				return "", err
			}
			break
		}
		if err != nil {
			return "", err
		}
		if err := c.commit(add); err != nil {
			c.unplugMount(ctx, b, m.Target)
			return "", err
		}
	}
	e.emit("container", "mount", cid, name, map[string]string{"target": m.Target, "source": m.Source, "change": string(plan)})
	return plan, nil
}

// RemoveMount takes the bind mount at target away from container id, the same way AddMount adds
// one; a running container's guest unmounts it as it runs (the device stays until its VM ends).
func (e *Engine) RemoveMount(ctx context.Context, id, target string) (MountChange, error) {
	c, err := e.lookup(id)
	if err != nil {
		return "", err
	}
	if !filepath.IsAbs(target) {
		return "", fmt.Errorf("container path %q: must be absolute: %w", target, ErrInvalid)
	}
	target = filepath.Clean(target)
	c.mountMu.Lock()
	defer c.mountMu.Unlock()
	c.mu.Lock()
	name, cid := c.rec.Name, c.rec.ID
	var old *Mount
	for _, mt := range c.rec.Mounts {
		if mt.Target == target {
			mt := mt
			old = &mt
		}
	}
	c.mu.Unlock()
	if old == nil {
		return "", fmt.Errorf("container %s has no folder mounted at %s: %w", name, target, ErrNotFound)
	}
	plan, b, err := c.mountPlan(false)
	if err != nil {
		return "", err
	}
	drop := func(r *Container) {
		r.Mounts, r.Config.Mounts = dropMount(r.Mounts, target), dropMount(r.Config.Mounts, target)
	}
	if plan == MountLive {
		c.mu.Lock()
		tag, ok := b.mounted[target]
		c.mu.Unlock()
		if ok {
			actx, cancel := context.WithTimeout(ctx, agentTimeout)
			err := b.client.Unmount(actx, target)
			cancel()
			if err != nil {
				return "", fmt.Errorf("unmounting %s from %s: %w", target, name, err)
			}
			c.mu.Lock()
			delete(b.mounted, target)
			c.mu.Unlock()
			c.unwatch(b, target)
			if err := c.commit(drop); err != nil {
				c.remount(ctx, b, agentproto.MountSpec{Tag: tag, Target: target, ReadOnly: old.ReadOnly})
				return "", err
			}
			e.emit("container", "unmount", cid, name, map[string]string{"target": target, "change": string(plan)})
			return plan, nil
		}
	}
	if err := c.commit(drop); err != nil {
		return "", err
	}
	e.emit("container", "unmount", cid, name, map[string]string{"target": target, "change": string(plan)})
	return plan, nil
}

// commit is commitLocked under c.mu.
func (c *ctr) commit(mut func(r *Container)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.commitLocked(mut)
}

// plugMount hot-plugs m's (pinned) source into b's VM and has the agent mount it at m.Target.
func (c *ctr) plugMount(ctx context.Context, b *boot, m Mount) error {
	pinned, err := pinnedMounts([]Mount{m})
	if err != nil {
		return err
	}
	c.mu.Lock()
	tag := "h" + strconv.Itoa(b.hotplugs)
	b.hotplugs++ // a tag is never reused in one VM, even when its plug fails
	c.mu.Unlock()
	sa := b.machine.(vm.ShareAdder)
	if err := sa.AddShare(ctx, vm.Share{Tag: tag, HostPath: pinned[0].Source, ReadOnly: m.ReadOnly}); err != nil {
		return fmt.Errorf("adding %s to the running VM: %w", m.Source, err)
	}
	// The guest kernel probes the new device as it comes: retry until it has.
	actx, cancel := context.WithTimeout(ctx, mountAgentTimeout)
	defer cancel()
	spec := agentproto.MountSpec{Tag: tag, Target: m.Target, ReadOnly: m.ReadOnly}
	for {
		err = b.client.Mount(actx, spec)
		if err == nil || !errors.Is(err, agentproto.ErrNotFound) {
			break
		}
		select {
		case <-actx.Done():
			return fmt.Errorf("mounting %s at %s: the guest did not see the new share: %w", m.Source, m.Target, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	if err != nil {
		return fmt.Errorf("mounting %s at %s: %w", m.Source, m.Target, err)
	}
	// Host edits reach inotify watchers in the container as for a bind mounted at boot.
	stop := c.watchMounts([]Mount{pinned[0]}, b.client)
	c.mu.Lock()
	b.mounted[m.Target] = tag
	if b.watchDone {
		defer stop()
	} else {
		if b.watches == nil {
			b.watches = map[string]func(){}
		}
		b.watches[m.Target] = stop
	}
	c.mu.Unlock()
	return nil
}

// unwatch stops the watcher of a bind mounted live at target, if any.
func (c *ctr) unwatch(b *boot, target string) {
	c.mu.Lock()
	stop := b.watches[target]
	delete(b.watches, target)
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// unplugMount undoes plugMount's mount (the device stays until the VM ends), best effort.
func (c *ctr) unplugMount(ctx context.Context, b *boot, target string) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), agentTimeout)
	defer cancel()
	if err := b.client.Unmount(actx, target); err != nil {
		c.e.log.Warn("undoing a bind mount", zapID(c.rec.ID), zapStr("target", target), zapErr(err))
		return
	}
	c.mu.Lock()
	delete(b.mounted, target)
	c.mu.Unlock()
	c.unwatch(b, target)
}

// remount mounts a share again after a removal that could not be saved, best effort.
func (c *ctr) remount(ctx context.Context, b *boot, spec agentproto.MountSpec) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), agentTimeout)
	defer cancel()
	if err := b.client.Mount(actx, spec); err != nil {
		c.e.log.Warn("restoring a bind mount", zapID(c.rec.ID), zapStr("target", spec.Target), zapErr(err))
		return
	}
	c.mu.Lock()
	b.mounted[spec.Target] = spec.Tag
	c.mu.Unlock()
}

// restartWith saves the record changed by mut and restarts the container's VM (the same container).
// When the restart fails the record is put back (undo) and the container started as it was.
func (c *ctr) restartWith(ctx context.Context, id string, mut, undo func(r *Container)) error {
	if err := c.commit(mut); err != nil {
		return err
	}
	cause := c.e.Restart(ctx, id, nil)
	if cause == nil {
		return nil
	}
	if err := c.commit(undo); err != nil {
		return fmt.Errorf("%w (and putting the record back: %v)", cause, err)
	}
	if err := c.start(context.WithoutCancel(ctx), false); err != nil {
		return fmt.Errorf("%w (and starting it again as it was: %v)", cause, err)
	}
	return cause
}

func dropMount(ms []Mount, target string) []Mount {
	var out []Mount
	for _, m := range ms {
		if m.Target != target {
			out = append(out, m)
		}
	}
	return out
}
