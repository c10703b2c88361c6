package engine

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
)

// guest returns a client of an agent serving the container's root: the running container's own,
// or, for a stopped container, that of a short-lived VM of its disks that runs no workload (release
// syncs and ends it). Start and Remove wait for such a VM to end. A container booting or restarting
// is ErrConflict, a paused one too.
func (c *ctr) guest(ctx context.Context) (cl *agentproto.Client, release func(), err error) {
	c.mu.Lock()
	if err := c.waitHelperLocked(ctx); err != nil {
		c.mu.Unlock()
		return nil, nil, err
	}
	for c.sup != nil && c.rec.State == StateExited {
		// The last run has exited and its VM is being powered off: copy once it is.
		done := c.sup.done
		c.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
		c.mu.Lock()
		if err := c.waitHelperLocked(ctx); err != nil {
			c.mu.Unlock()
			return nil, nil, err
		}
	}
	if c.sup != nil {
		b, st, name := c.sup.boot, c.rec.State, c.rec.Name
		c.mu.Unlock()
		if b == nil || st == StatePaused {
			return nil, nil, fmt.Errorf("container %s is %s: its files can be reached when it runs or has stopped: %w", name, st, ErrConflict)
		}
		return b.client, func() {}, nil
	}
	if c.removing {
		c.mu.Unlock()
		return nil, nil, fmt.Errorf("container %s is being removed: %w", c.rec.Name, ErrConflict)
	}
	done := make(chan struct{})
	c.helper = done
	c.mu.Unlock()
	free := func() {
		c.mu.Lock()
		c.helper = nil
		close(done)
		c.mu.Unlock()
	}
	e := c.e
	if e.hv == nil {
		free()
		return nil, nil, fmt.Errorf("engine has no hypervisor: %w", ErrNotSupported)
	}
	spec, err := c.machineSpec(ctx)
	if err != nil {
		free()
		return nil, nil, err
	}
	if err := os.MkdirAll(spec.StateDir, 0o700); err != nil {
		free()
		return nil, nil, fmt.Errorf("creating VM state dir: %w", err)
	}
	m, err := e.hv.Start(ctx, spec)
	if err != nil {
		free()
		return nil, nil, fmt.Errorf("starting a VM to reach the files of %s (%s): %w", c.rec.Name, e.hv.Name(), err)
	}
	stop := func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		_ = m.Stop(sctx, true)
		free()
	}
	cl = agentproto.NewClient(m.Dial)
	actx, cancel := context.WithTimeout(ctx, agentTimeout)
	defer cancel()
	if _, err := cl.Hello(actx); err != nil {
		if merr := m.Err(); merr != nil {
			err = fmt.Errorf("%w (VM: %v)", err, merr)
		}
		stop()
		return nil, nil, fmt.Errorf("waiting for the guest agent: %w", err)
	}
	e.log.Debug("copy VM up", zapID(spec.ID))
	return cl, func() {
		// The agent syncs the disks before the VM is powered off.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		if err := vm.Shutdown(sctx, m, e.log); err != nil {
			e.log.Debug("copy VM shutdown", zapID(spec.ID), zapErr(err))
		}
		cancel()
		stop() // frees the copy VM's slot (its Stop is a no-op now)
	}, nil
}

// waitHelperLocked waits (c.mu held, released while waiting) until no copy VM runs.
func (c *ctr) waitHelperLocked(ctx context.Context) error {
	for c.helper != nil {
		h := c.helper
		c.mu.Unlock()
		select {
		case <-h:
		case <-ctx.Done():
			c.mu.Lock()
			return ctx.Err()
		}
		c.mu.Lock()
	}
	return nil
}

// inGuest runs fn with an agent serving the container's root (guest).
func (c *ctr) inGuest(ctx context.Context, fn func(*agentproto.Client) error) error {
	cl, release, err := c.guest(ctx)
	if err != nil {
		return err
	}
	defer release()
	return fn(cl)
}

// copyFromGuest is CopyFrom of a root on disks: the agent's archive, the copy VM (if one was
// needed) kept until the reader is closed.
func (c *ctr) copyFromGuest(ctx context.Context, p string) (io.ReadCloser, PathStat, error) {
	cl, release, err := c.guest(ctx)
	if err != nil {
		return nil, PathStat{}, err
	}
	rc, st, err := cl.CopyFrom(ctx, p)
	if err != nil {
		release()
		return nil, PathStat{}, copyErr(err)
	}
	return &releasingReader{rc: rc, release: release}, fromAgentStat(st), nil
}

type releasingReader struct {
	rc      io.ReadCloser
	release func()
	closed  bool
}

func (r *releasingReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	return n, copyErr(err)
}

func (r *releasingReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	err := r.rc.Close()
	r.release()
	return err
}
