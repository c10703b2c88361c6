package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
)

const sigKILL = 9

// Stop stops a container: its stop signal (the image's StopSignal, else SIGTERM), then SIGKILL after
// the timeout (nil: the container's stop timeout, default 10 s; negative: none), then a VM power-off.
// The restart policy does not restart it. Stopping a stopped container is a no-op.
func (e *Engine) Stop(ctx context.Context, id string, timeout *time.Duration) error {
	c, err := e.lookup(id)
	if err != nil {
		return err
	}
	return c.stop(ctx, timeout, true)
}

// stop ends the supervisor. manual: a user's stop (remembered for the restart policy); false: the
// engine is closing.
func (c *ctr) stop(ctx context.Context, timeout *time.Duration, manual bool) error {
	c.mu.Lock()
	s := c.sup
	if s == nil {
		// Not running; a restart owed from before the engine started is called off.
		if c.scheduled || c.rec.State == StateRestarting {
			err := c.commitLocked(func(r *Container) {
				if manual {
					r.ManuallyStopped = true
				}
				if r.State == StateRestarting {
					c.setState(r, StateExited)
				}
				r.NextRestart = time.Time{}
			})
			if err != nil {
				c.mu.Unlock()
				return fmt.Errorf("stopping %s: %w", c.rec.Name, err)
			}
			c.scheduled = false
		}
		c.mu.Unlock()
		return nil
	}
	if c.rec.State == StateExited {
		// Already exited, its VM powering off: nothing to stop, and not a manual stop.
		c.mu.Unlock()
		select {
		case <-s.done:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("stopping %s: %w", c.rec.Name, ctx.Err())
		}
	}
	if manual {
		if err := c.commitLocked(func(r *Container) { r.ManuallyStopped = true }); err != nil {
			c.mu.Unlock()
			return fmt.Errorf("stopping %s: %w", c.rec.Name, err)
		}
	}
	s.stopping = true
	d := defaultStop
	if c.rec.Config.StopTimeout != nil {
		d = time.Duration(*c.rec.Config.StopTimeout) * time.Second
	}
	if timeout != nil {
		d = *timeout
	}
	sig, _ := ParseSignal(c.rec.Process.StopSignal)
	if sig == 0 {
		sig = 15
	}
	b := s.boot
	paused := c.rec.State == StatePaused
	exitCh := c.exitCh
	c.mu.Unlock()
	s.cancel() // ends a restart backoff

	if b != nil {
		if paused {
			_ = c.resumeBoot(ctx, b, false)
		}
		c.e.emit("container", "kill", c.rec.ID, c.rec.Name, map[string]string{"signal": strconv.Itoa(sig)})
		if err := sendWithin(time.Second, "the stop signal", func() error { return b.proc.Signal(sig) }); err != nil {
			c.e.log.Debug("stop signal", zapID(c.rec.ID), zapErr(err))
		}
		if !waitOrTimeout(ctx, exitCh, d) {
			c.e.emit("container", "kill", c.rec.ID, c.rec.Name, map[string]string{"signal": "9"})
			c.killWorkload(b)
		}
	}
	select {
	case <-s.done:
	case <-ctx.Done():
		return fmt.Errorf("stopping %s: %w", c.rec.Name, ctx.Err())
	}
	c.e.emit("container", "stop", c.rec.ID, c.rec.Name, nil)
	return nil
}

// killGrace is how long a workload has to end after SIGKILL before its VM is killed.
const killGrace = 5 * time.Second

// killWorkload sends SIGKILL to b's workload and kills the VM when the workload has not ended
// killGrace later (the agent does not answer).
func (c *ctr) killWorkload(b *boot) {
	if err := sendWithin(time.Second, "SIGKILL", func() error { return b.proc.Signal(sigKILL) }); err != nil {
		c.e.log.Debug("kill signal", zapID(c.rec.ID), zapErr(err))
	}
	t := time.NewTimer(killGrace)
	defer t.Stop()
	select {
	case <-b.proc.Done():
	case <-t.C:
		c.killVM(b, fmt.Sprintf("the workload did not exit within %s of SIGKILL (the agent did not answer)", killGrace))
	}
}

// waitOrTimeout waits for ch up to d (d < 0: no limit, as Docker's stop timeout -1); false when d
// passed first (or ctx ended).
func waitOrTimeout(ctx context.Context, ch <-chan struct{}, d time.Duration) bool {
	if d < 0 {
		select {
		case <-ch:
			return true
		case <-ctx.Done():
			return false
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// Restart stops (as Stop) and starts the container.
func (e *Engine) Restart(ctx context.Context, id string, timeout *time.Duration) error {
	c, err := e.lookup(id)
	if err != nil {
		return err
	}
	if err := c.stop(ctx, timeout, true); err != nil {
		return err
	}
	if err := c.start(ctx, false); err != nil {
		return err
	}
	e.emit("container", "restart", c.rec.ID, c.rec.Name, nil)
	return nil
}

// Kill sends a signal (name or number; "" = SIGKILL) to the workload. SIGKILL and the stop signal
// count as a manual stop for the restart policy, as in Docker.
func (e *Engine) Kill(ctx context.Context, id, signal string) error {
	c, err := e.lookup(id)
	if err != nil {
		return err
	}
	if signal == "" {
		signal = "SIGKILL"
	}
	sig, err := ParseSignal(signal)
	if err != nil {
		return err
	}
	c.mu.Lock()
	b, err := c.currentBootLocked()
	if err != nil {
		c.mu.Unlock()
		return err
	}
	if c.rec.State == StatePaused {
		c.mu.Unlock()
		return fmt.Errorf("container %s is paused; unpause it first: %w", c.rec.Name, ErrConflict)
	}
	stopSig, _ := ParseSignal(c.rec.Process.StopSignal)
	if sig == sigKILL || sig == stopSig {
		if err := c.commitLocked(func(r *Container) { r.ManuallyStopped = true }); err != nil {
			c.mu.Unlock()
			return fmt.Errorf("killing %s: %w", c.rec.Name, err)
		}
	}
	c.mu.Unlock()
	if err := sendWithin(agentCallTimeout, "signal "+strconv.Itoa(sig), func() error { return b.proc.Signal(sig) }); err != nil {
		return fmt.Errorf("signalling %s: %w", c.rec.Name, err)
	}
	e.emit("container", "kill", c.rec.ID, c.rec.Name, map[string]string{"signal": strconv.Itoa(sig)})
	return nil
}

// Pause freezes the container's VM.
func (e *Engine) Pause(ctx context.Context, id string) error {
	c, err := e.lookup(id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := c.currentBootLocked()
	if err != nil {
		return err
	}
	if c.rec.State == StatePaused {
		return fmt.Errorf("container %s is already paused: %w", c.rec.Name, ErrConflict)
	}
	pctx, cancel := context.WithTimeout(ctx, agentCallTimeout) // the hypervisor may be stuck too
	defer cancel()
	if err := b.machine.Pause(pctx); err != nil {
		return fmt.Errorf("pausing %s: %w", c.rec.Name, err)
	}
	if err := c.commitLocked(func(r *Container) { c.setState(r, StatePaused) }); err != nil {
		// Not recorded: the container goes on running, as its record says.
		if rerr := b.machine.Resume(context.WithoutCancel(ctx)); rerr != nil {
			e.log.Error("resuming after a pause that could not be recorded", zapID(c.rec.ID), zapErr(rerr))
		}
		return fmt.Errorf("pausing %s: %w", c.rec.Name, err)
	}
	e.emit("container", "pause", c.rec.ID, c.rec.Name, nil)
	return nil
}

// Resume continues a paused container and resets its clock.
func (e *Engine) Resume(ctx context.Context, id string) error {
	c, err := e.lookup(id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	b, err := c.currentBootLocked()
	if err == nil && c.rec.State != StatePaused {
		err = fmt.Errorf("container %s is not paused: %w", c.rec.Name, ErrConflict)
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if err := c.resumeBoot(ctx, b, true); err != nil {
		return err
	}
	e.emit("container", "unpause", c.rec.ID, c.rec.Name, nil)
	return nil
}

// resumeBoot resumes b's VM and records it. undo: a record that cannot be saved pauses the VM again
// and fails (Resume); else (a stop resuming the VM to end it) the record follows regardless.
func (c *ctr) resumeBoot(ctx context.Context, b *boot, undo bool) error {
	rctx, cancel := context.WithTimeout(ctx, agentCallTimeout) // the hypervisor may be stuck too
	err := b.machine.Resume(rctx)
	cancel()
	if err != nil {
		return fmt.Errorf("resuming %s: %w", c.rec.Name, err)
	}
	c.mu.Lock()
	if c.rec.State == StatePaused {
		running := func(r *Container) { c.setState(r, StateRunning) }
		if !undo {
			c.recordLocked(running)
		} else if err := c.commitLocked(running); err != nil {
			perr := b.machine.Pause(context.WithoutCancel(ctx))
			c.mu.Unlock()
			if perr != nil {
				c.e.log.Error("pausing again after a resume that could not be recorded", zapID(c.rec.ID), zapErr(perr))
			}
			return fmt.Errorf("resuming %s: %w", c.rec.Name, err)
		}
	}
	c.mu.Unlock()
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := b.client.SetTime(tctx, time.Now()); err != nil {
		c.e.log.Debug("clock resync after resume", zapID(c.rec.ID), zapErr(err))
	}
	return nil
}

// Wait blocks until the container is not running and returns its exit code. For a running (or
// restarting) container it waits for the next exit; for a created one, for the exit of its first
// run, or its removal. A container removed by --rm still reports its code to a late Wait.
func (e *Engine) Wait(ctx context.Context, id string) (int, error) {
	c, err := e.lookup(id)
	if err != nil {
		e.mu.Lock()
		code, ok := e.tombstones.get(id)
		e.mu.Unlock()
		if ok {
			return code, nil
		}
		return -1, err
	}
	c.mu.Lock()
	st := c.rec.State
	ch := c.exitCh
	code := c.rec.ExitCode
	c.mu.Unlock()
	if st == StateExited || st == StateDead {
		return code, nil
	}
	select {
	case <-ch:
	case <-ctx.Done():
		return -1, ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rec.ExitCode, nil
}

// Remove deletes a container: record, rootfs, logs. A running container needs opts.Force (it is
// killed first).
func (e *Engine) Remove(ctx context.Context, id string, opts RemoveOptions) error {
	c, err := e.lookup(id)
	if err != nil {
		return err
	}
	return e.removeCtr(ctx, c, opts.Force, opts.Volumes)
}

// removeCtr removes c; volumes: its anonymous volumes too (those another container also mounts
// stay, as in Docker).
func (e *Engine) removeCtr(ctx context.Context, c *ctr, force, volumes bool) error {
	c.mu.Lock()
	if err := c.waitHelperLocked(ctx); err != nil {
		c.mu.Unlock()
		return err
	}
	if c.removing {
		c.mu.Unlock()
		return fmt.Errorf("container %s is already being removed: %w", c.rec.Name, ErrConflict)
	}
	if c.sup != nil && !force && c.rec.State != StateExited {
		st := c.rec.State
		c.mu.Unlock()
		return fmt.Errorf("container %s is %s: stop it first or force the removal: %w", c.rec.Name, st, ErrConflict)
	}
	c.removing = true
	c.scheduled = false
	s := c.sup
	c.mu.Unlock()
	if s != nil {
		zero := time.Duration(0)
		c.mu.Lock()
		s.stopping = true
		c.mu.Unlock()
		if err := c.stop(ctx, &zero, false); err != nil {
			c.mu.Lock()
			c.removing = false
			c.mu.Unlock()
			return err
		}
	}
	c.mu.Lock()
	id, code := c.rec.ID, c.rec.ExitCode
	c.mu.Unlock()
	if err := e.removeContainerDir(id); err != nil {
		// Nothing was removed: the container stays as it was.
		c.mu.Lock()
		c.removing = false
		c.mu.Unlock()
		return fmt.Errorf("removing %s: %w", c.rec.Name, err)
	}
	_ = os.RemoveAll(e.stateDir(id))
	e.mu.Lock()
	delete(e.ctrs, id)
	if e.names[c.rec.Name] == id {
		delete(e.names, c.rec.Name)
	}
	e.tombstones.add(id, c.rec.Name, code)
	e.mu.Unlock()
	c.mu.Lock()
	close(c.exitCh) // a Wait for a run that will not come ends (with the last exit code)
	c.exitCh = make(chan struct{})
	c.mu.Unlock()
	e.forgetEndpoints(id, c.snapshot().Networks)
	c.attach.closeAll() // attachments waiting for a run that will not come end
	e.emit("container", "destroy", id, c.rec.Name, nil)
	e.setLabels(id, nil)
	if volumes {
		e.removeAnonymousVolumes(c.rec.Mounts)
	}
	return nil
}

// removeAnonymousVolumes removes the anonymous volumes among mounts that no container uses now.
func (e *Engine) removeAnonymousVolumes(mounts []Mount) {
	for _, m := range mounts {
		if m.Type != MountVolume {
			continue
		}
		v, err := e.readVolume(m.Name)
		if err != nil || !v.Anonymous {
			continue
		}
		if err := e.RemoveVolume(context.Background(), m.Name, true); err != nil && !errors.Is(err, ErrConflict) {
			e.log.Warn("removing an anonymous volume", zapStr("volume", m.Name), zapErr(err))
		}
	}
}

// removeAll removes a tree, making read-only directories writable where that blocks removal.
func removeAll(path string) error {
	err := os.RemoveAll(path)
	if err == nil || !errors.Is(err, os.ErrPermission) {
		return err
	}
	_ = filepath.Walk(path, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(path)
}

var _ = agentproto.ProtocolVersion
