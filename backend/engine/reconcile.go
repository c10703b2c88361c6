package engine

import (
	"context"
	"os"
	"time"
)

// shutdownForEngineClose stops a running container because the engine closes. Its record keeps the
// restart policy's view: not manually stopped, so the next Open starts it again when the policy is
// always or unless-stopped.
func (c *ctr) shutdownForEngineClose(ctx context.Context) {
	c.mu.Lock()
	running := c.sup != nil
	c.mu.Unlock()
	if !running {
		return
	}
	if err := c.stop(ctx, nil, false); err != nil {
		c.e.log.Warn("stopping container at engine close", zapID(c.rec.ID), zapErr(err))
	}
	c.mu.Lock()
	p := c.rec.Config.Restart.Name
	if (p == "always" || p == "unless-stopped") && !c.rec.ManuallyStopped {
		now := time.Now().UTC()
		c.recordLocked(func(r *Container) {
			r.Error = "stopped because the engine closed"
			r.NextRestart = now // restart at the next Open
		})
	}
	c.mu.Unlock()
}

// reconcile runs once at Open: containers whose record says running, paused or restarting lost
// their VM with the previous engine. They are marked exited (255) and their restart policy applied;
// a restart that was due later keeps its time (the backoff survives the engine restart).
func (e *Engine) reconcile() {
	for _, c := range e.ctrs {
		c.mu.Lock()
		rec := &c.rec
		var due time.Time
		switch rec.State {
		case StateRunning, StatePaused:
			e.log.Warn("container was running when the engine stopped; marking it exited", zapID(rec.ID), zapStr("name", rec.Name))
			now := time.Now()
			c.recordLocked(func(r *Container) {
				r.State = StateExited
				r.ExitCode = 255
				r.FinishedAt = now.UTC()
				r.Error = "the engine stopped while the container was running"
				if shouldRestart(r.Config.Restart, r.ExitCode, r.RestartCount, r.ManuallyStopped) {
					r.RestartDelay = nextBackoff(r.RestartDelay, r.FinishedAt.Sub(r.StartedAt))
					r.NextRestart = now.Add(r.RestartDelay)
					r.State = StateRestarting
				}
			})
			if rec.State == StateRestarting {
				due = rec.NextRestart
			}
			_ = os.RemoveAll(e.stateDir(rec.ID))
		case StateRestarting:
			due = rec.NextRestart
		case StateExited:
			if !rec.NextRestart.IsZero() && (rec.Config.Restart.Name == "always" || rec.Config.Restart.Name == "unless-stopped") {
				due = rec.NextRestart // stopped by Close
			} else if rec.Config.Restart.Name == "always" && rec.ManuallyStopped {
				// Docker restarts "always" containers when the daemon starts, even after a stop.
				due = time.Now()
			}
		}
		c.mu.Unlock()
		if !due.IsZero() {
			e.scheduleRestart(c, due)
		}
	}
}

// scheduleRestart starts c at due (a restart owed since before this engine started).
func (e *Engine) scheduleRestart(c *ctr, due time.Time) {
	c.mu.Lock()
	c.scheduled = true
	c.mu.Unlock()
	e.bg.Add(1)
	go func() {
		defer e.bg.Done()
		t := time.NewTimer(time.Until(due))
		defer t.Stop()
		select {
		case <-t.C:
		case <-e.ctx.Done():
			return
		}
		c.mu.Lock()
		still := c.scheduled && c.sup == nil && !c.removing && (c.rec.State == StateRestarting || c.rec.State == StateExited)
		c.scheduled = false
		c.mu.Unlock()
		if !still {
			return
		}
		ctx, cancel := context.WithTimeout(e.ctx, 2*agentTimeout)
		defer cancel()
		if err := c.start(ctx, true); err != nil {
			e.log.Warn("restarting container after engine restart", zapID(c.rec.ID), zapErr(err))
			c.mu.Lock()
			if c.rec.State == StateRestarting {
				c.recordLocked(func(r *Container) { c.setState(r, StateExited) })
			}
			c.mu.Unlock()
		}
	}()
}
