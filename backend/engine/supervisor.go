package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
)

// Timeouts of the boot sequence. A TCG boot takes 2-3 s; a loaded CI machine can take much longer.
const (
	agentTimeout    = 90 * time.Second // VM start until the agent answers
	shutdownTimeout = 10 * time.Second // agent shutdown + power-off before the VM is killed
	defaultStop     = 10 * time.Second
	minBackoff      = 100 * time.Millisecond
	maxBackoff      = time.Minute
	backoffReset    = 10 * time.Second // a run this long resets the backoff
)

// Start starts a created or exited container: binds its ports, boots its VM, starts the workload
// and hands it to a supervisor goroutine. It returns once the workload runs (or failed to start:
// a missing command wraps agentproto.ErrCommandNotFound). Starting a running container is a no-op.
func (e *Engine) Start(ctx context.Context, id string) error {
	c, err := e.lookup(id)
	if err != nil {
		return err
	}
	return c.start(ctx, false)
}

// start begins a supervisor. fromPolicy: started by the engine (reconcile), which keeps RestartCount.
func (c *ctr) start(ctx context.Context, fromPolicy bool) error {
	c.mu.Lock()
	if err := c.waitHelperLocked(ctx); err != nil {
		c.mu.Unlock()
		return err
	}
	for c.sup != nil && c.rec.State == StateExited {
		// The last run has exited and its VM is being powered off: start after that.
		done := c.sup.done
		c.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
		c.mu.Lock()
	}
	if c.sup != nil {
		c.mu.Unlock()
		return nil
	}
	switch c.rec.State {
	case StateCreated, StateExited:
	case StateRestarting: // a restart scheduled by a previous engine: start it now
	default:
		st := c.rec.State
		c.mu.Unlock()
		return fmt.Errorf("container %s is %s and cannot be started: %w", c.rec.Name, st, ErrConflict)
	}
	if c.removing {
		c.mu.Unlock()
		return fmt.Errorf("container %s is being removed: %w", c.rec.Name, ErrConflict)
	}
	ports := append([]PortMapping(nil), c.rec.Config.Ports...)
	// A restart owed from before this engine started counts as one once it is recorded.
	bump := fromPolicy && c.rec.State == StateRestarting
	sctx, cancel := context.WithCancel(c.e.ctx)
	s := &supervisor{ctx: sctx, cancel: cancel, done: make(chan struct{})}
	c.sup = s // claims the container: a concurrent Start is a no-op
	c.scheduled = false
	c.mu.Unlock()

	fail := func(err error) error {
		for _, ln := range s.listeners {
			ln.Close()
		}
		cancel()
		c.mu.Lock()
		c.sup = nil
		serr := c.commitLocked(func(r *Container) {
			if bump {
				r.RestartCount++
			}
			r.Error = guestText(err.Error())
			r.ExitCode = exitCodeFor(err)
		})
		close(c.exitCh) // a Wait for this run gets the failure's code
		c.exitCh = make(chan struct{})
		close(s.done)
		c.mu.Unlock()
		c.attach.closeAll() // the run they waited for did not start: they end, as a Wait does
		c.e.emit("container", "die", c.rec.ID, c.rec.Name, map[string]string{"exitCode": strconv.Itoa(exitCodeFor(err)), "error": err.Error()})
		if serr != nil {
			return errors.Join(err, fmt.Errorf("recording the failed start of %s: %w", c.rec.Name, serr))
		}
		return err
	}
	lns, bound, err := listenPorts(ports)
	if err != nil {
		return fail(fmt.Errorf("starting %s: %w", c.rec.Name, err))
	}
	s.listeners = lns
	// A Stop or Remove while booting cancels the boot.
	bctx, bcancel := context.WithCancel(ctx)
	unhook := context.AfterFunc(sctx, bcancel)
	b, err := c.boot(bctx)
	unhook()
	bcancel()
	if err != nil {
		return fail(fmt.Errorf("starting %s: %w", c.rec.Name, err))
	}
	c.mu.Lock()
	stopped := s.stopping || sctx.Err() != nil
	err = c.commitLocked(func(r *Container) {
		if !stopped {
			r.ManuallyStopped = false
		}
		if bump {
			r.RestartCount++
		}
		r.Ports = bound
		r.Error = ""
		r.NextRestart = time.Time{}
		if !fromPolicy {
			r.RestartCount = 0
			r.RestartDelay = 0
		}
		r.StartedAt = b.started
		r.FinishedAt = time.Time{}
		r.ExitCode = 0
		c.startHealth(r)
		c.setState(r, StateRunning)
	})
	if err != nil {
		// A run the record does not know of is ended at once.
		c.mu.Unlock()
		_ = sendWithin(time.Second, "SIGKILL", func() error { return b.proc.Signal(sigKILL) })
		c.teardown(b, false)
		return fail(fmt.Errorf("starting %s: %w", c.rec.Name, err))
	}
	if stopped {
		// Stopped just as the boot finished: end the workload; supervise records the exit.
		go c.killWorkload(b)
	}
	s.boot = b
	if hc := c.rec.Process.Health; hc != nil {
		go c.healthLoop(s, b, *hc)
	}
	c.mu.Unlock()
	for i, ln := range lns {
		go c.servePort(s, ln, bound[i])
	}
	c.e.emit("container", "start", c.rec.ID, c.rec.Name, nil)
	go c.supervise(s)
	return nil
}

// exitCodeFor maps a start failure to Docker's codes: 127 command not found, 126 not executable,
// 128 anything else.
func exitCodeFor(err error) int {
	switch {
	case errors.Is(err, agentproto.ErrCommandNotFound):
		return 127
	case errors.Is(err, agentproto.ErrCommandNotExecutable):
		return 126
	}
	return 128
}

// supervise owns the container from a successful start until it has exited for good: it waits for
// the workload, tears the VM down, records the exit and applies the restart policy.
func (c *ctr) supervise(s *supervisor) {
	e := c.e
	defer close(s.done)
	for {
		c.mu.Lock()
		b := s.boot
		c.mu.Unlock()
		code, errMsg := c.waitExit(b)
		// Output is flushed to the log before the exit is announced, so Logs after Wait has it all;
		// the VM is powered off after (a Wait does not pay for the shutdown).
		if b.stopWatch != nil {
			b.stopWatch()
		}
		b.writer.close()

		c.mu.Lock()
		s.boot = nil
		now := time.Now().UTC()
		ran := now.Sub(b.started)
		restart := !s.stopping && s.ctx.Err() == nil &&
			shouldRestart(c.rec.Config.Restart, code, c.rec.RestartCount, c.rec.ManuallyStopped)
		c.recordLocked(func(r *Container) {
			r.FinishedAt = now
			r.ExitCode = code
			r.Error = guestText(errMsg)
			if restart {
				r.RestartDelay = nextBackoff(r.RestartDelay, ran)
				r.NextRestart = now.Add(r.RestartDelay)
				c.setState(r, StateRestarting)
			} else {
				c.setState(r, StateExited)
			}
		})
		e.emit("container", "die", c.rec.ID, c.rec.Name, map[string]string{"exitCode": strconv.Itoa(code)})
		close(c.exitCh)
		c.exitCh = make(chan struct{})
		delay := c.rec.RestartDelay
		discard := !restart && (c.rec.Config.AutoRemove || c.removing) && !hasVolumeDisk(c.rec.Mounts)
		c.mu.Unlock()
		e.log.Debug("container exited", zapID(c.rec.ID), zap.Int("code", code), zap.Bool("restart", restart))
		if !restart {
			for _, ln := range s.listeners {
				ln.Close()
			}
		}
		c.teardown(b, discard && e.ctx.Err() == nil)
		if !restart {
			break
		}
		if !c.restartAfter(s, delay) {
			break
		}
	}
	for _, ln := range s.listeners {
		ln.Close()
	}
	s.cancel() // releases the context (and ends forwarded connections still open)
	c.mu.Lock()
	c.sup = nil
	autoRemove := c.rec.Config.AutoRemove && !c.removing
	if c.rec.State == StateRestarting { // backoff cut short by stop/remove/close
		c.recordLocked(func(r *Container) {
			c.setState(r, StateExited)
			r.NextRestart = time.Time{}
		})
	}
	c.mu.Unlock()
	if autoRemove && e.ctx.Err() == nil {
		if err := e.removeCtr(context.Background(), c, true, true); err != nil { // --rm: anonymous volumes too, as in Docker
			e.log.Warn("auto-removing container", zapID(c.rec.ID), zapErr(err))
		}
	}
}

// restartAfter waits delay (unless cancelled) and boots again, retrying per policy when the boot
// fails. It reports whether a new boot runs.
func (c *ctr) restartAfter(s *supervisor, delay time.Duration) bool {
	for {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return false
		}
		bctx, cancel := context.WithTimeout(s.ctx, 2*agentTimeout)
		b, err := c.boot(bctx)
		cancel()
		c.mu.Lock()
		if err == nil {
			if s.stopping || s.ctx.Err() != nil {
				// Stopped while booting: the supervisor's loop records this run's (forced) end.
				go c.killWorkload(b)
			}
			s.boot = b
			c.recordLocked(func(r *Container) {
				r.RestartCount++
				r.StartedAt = b.started
				r.NextRestart = time.Time{}
				r.Error = ""
				c.startHealth(r)
				c.setState(r, StateRunning)
			})
			if hc := c.rec.Process.Health; hc != nil {
				go c.healthLoop(s, b, *hc)
			}
			c.mu.Unlock()
			c.e.emit("container", "start", c.rec.ID, c.rec.Name, map[string]string{"restartCount": strconv.Itoa(c.rec.RestartCount)})
			return true
		}
		code := exitCodeFor(err)
		now := time.Now().UTC()
		again := s.ctx.Err() == nil && !s.stopping &&
			shouldRestart(c.rec.Config.Restart, code, c.rec.RestartCount+1, c.rec.ManuallyStopped)
		c.recordLocked(func(r *Container) {
			r.RestartCount++
			r.ExitCode, r.Error, r.FinishedAt = code, guestText(err.Error()), now
			if again {
				r.RestartDelay = nextBackoff(r.RestartDelay, 0)
				r.NextRestart = now.Add(r.RestartDelay)
			}
		})
		if again {
			delay = c.rec.RestartDelay
		}
		// A failed restart is an exit too: Wait and the events see it.
		c.e.emit("container", "die", c.rec.ID, c.rec.Name, map[string]string{"exitCode": strconv.Itoa(code), "error": err.Error()})
		close(c.exitCh)
		c.exitCh = make(chan struct{})
		c.mu.Unlock()
		c.e.log.Warn("restarting container failed", zapID(c.rec.ID), zapErr(err))
		if !again {
			return false
		}
	}
}

// waitExit waits for the workload and its output, returning the exit code and, when the stream
// broke instead of reporting a status, why.
func (c *ctr) waitExit(b *boot) (int, string) {
	b.pumps.Wait()
	st, err := b.proc.Wait()
	if err == nil {
		return st.Code, ""
	}
	// The stream broke: the VM died or was powered off.
	if why := b.killedBecause(); why != "" {
		return 137, why
	}
	msg := err.Error()
	if merr := b.machine.Err(); merr != nil {
		msg = merr.Error()
	}
	return 137, "the VM ended without reporting the workload's exit status: " + msg
}

// teardown ends a boot: stops the watcher, ends the output pumps, flushes the log, and powers the
// VM off (agent shutdown, then force after shutdownTimeout). With discard (a container about to be
// removed: AutoRemove, or a forced removal) it kills the VM at once instead of asking its agent to
// sync and quiesce the upper disk, which is deleted with the container. Binds and volume shares
// lose nothing (the guest caches no writes to them); a volume on a disk of its own keeps the
// orderly stop (hasVolumeDisk). A container kept after all (its removal failed) has the journal of
// its upper disk's file system to replay at its next start.
func (c *ctr) teardown(b *boot, discard bool) {
	if b.stopWatch != nil {
		b.stopWatch()
	}
	b.proc.Close() // ends the pumps if they still run
	b.pumps.Wait()
	b.writer.close()
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if discard {
		if err := b.machine.Stop(ctx, true); err != nil {
			c.e.log.Warn("ending a removed container's VM", zapID(c.rec.ID), zapErr(err))
		}
	} else if err := vm.Shutdown(ctx, b.machine, c.e.log); err != nil {
		fctx, fcancel := context.WithTimeout(context.Background(), shutdownTimeout)
		_ = b.machine.Stop(fctx, true)
		fcancel()
	}
	if b.releaseVols != nil {
		b.releaseVols()
	}
	// Attachments made since the exit wait for the next run (docker start -a): they are not ended
	// here, only when a start fails or the container is removed.
}

// hasVolumeDisk reports whether one of mounts is a volume on a disk of its own (Mount.Disk), whose
// file system the guest must sync and quiesce before its VM ends.
func hasVolumeDisk(mounts []Mount) bool {
	for _, m := range mounts {
		if m.Disk {
			return true
		}
	}
	return false
}

// shouldRestart is Docker's restart decision after an exit.
func shouldRestart(p RestartPolicy, exitCode, restartCount int, manuallyStopped bool) bool {
	if manuallyStopped {
		return false
	}
	switch p.Name {
	case "always", "unless-stopped":
		return true
	case "on-failure":
		return exitCode != 0 && (p.MaximumRetryCount == 0 || restartCount < p.MaximumRetryCount)
	}
	return false
}

// nextBackoff doubles the delay (100 ms, 200 ms, ... up to a minute), starting over after a run
// of at least backoffReset.
func nextBackoff(prev, ran time.Duration) time.Duration {
	if prev <= 0 || ran >= backoffReset {
		return minBackoff
	}
	d := prev * 2
	if d > maxBackoff {
		d = maxBackoff
	}
	return d
}
