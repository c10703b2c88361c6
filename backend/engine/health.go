package engine

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/skiff-containers/skiff/backend/images"
)

// HealthConfig is a container's health check (Docker's HEALTHCHECK and --health-* flags).
type HealthConfig = images.HealthConfig

// Health statuses, as Docker names them.
const (
	HealthStarting  = "starting"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
)

// Health is the state of a container's health check.
type Health struct {
	Status        string         `json:"status"`
	FailingStreak int            `json:"failingStreak"`
	Log           []HealthResult `json:"log,omitempty"` // the last healthLogSize checks, oldest first
}

// HealthResult is one run of the check.
type HealthResult struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	ExitCode int       `json:"exitCode"` // 0 healthy, else failed; -1: it could not run or timed out
	Output   string    `json:"output"`   // at most healthOutputMax bytes of stdout and stderr
}

// Docker's defaults and bounds.
const (
	defaultHealthInterval      = 30 * time.Second
	defaultHealthTimeout       = 30 * time.Second
	defaultHealthStartInterval = 5 * time.Second
	defaultHealthRetries       = 3
	minHealthDuration          = time.Millisecond
	healthLogSize              = 5
	healthOutputMax            = 4096
)

// validateHealth checks a health check given at create.
func validateHealth(h *HealthConfig) error {
	if h == nil {
		return nil
	}
	bad := func(why string) error { return fmt.Errorf("health check %q: %s: %w", h.Test, why, ErrInvalid) }
	if len(h.Test) > 0 {
		switch h.Test[0] {
		case "NONE":
			if len(h.Test) != 1 {
				return bad("NONE takes no arguments")
			}
		case "CMD":
			if len(h.Test) < 2 {
				return bad("CMD needs a command")
			}
		case "CMD-SHELL":
			if len(h.Test) != 2 || h.Test[1] == "" {
				return bad("CMD-SHELL takes one command line")
			}
		default:
			return bad("the test must start with CMD, CMD-SHELL or NONE")
		}
	}
	for what, d := range map[string]time.Duration{"interval": h.Interval, "timeout": h.Timeout,
		"start period": h.StartPeriod, "start interval": h.StartInterval} {
		if d != 0 && d < minHealthDuration {
			return bad(fmt.Sprintf("the %s %v must be at least %v (or 0 for the default)", what, d, minHealthDuration))
		}
	}
	if h.Retries < 0 {
		return bad("retries must not be negative")
	}
	return nil
}

// resolveHealth merges the container's health check over the image's and fills Docker's
// defaults; nil when there is none (or it is NONE).
func resolveHealth(ctr, img *HealthConfig) *HealthConfig {
	var h HealthConfig
	if img != nil {
		h = *img
	}
	if ctr != nil {
		if len(ctr.Test) > 0 {
			h.Test = ctr.Test
		}
		for _, f := range []struct{ dst, src *time.Duration }{{&h.Interval, &ctr.Interval}, {&h.Timeout, &ctr.Timeout},
			{&h.StartPeriod, &ctr.StartPeriod}, {&h.StartInterval, &ctr.StartInterval}} {
			if *f.src != 0 {
				*f.dst = *f.src
			}
		}
		if ctr.Retries != 0 {
			h.Retries = ctr.Retries
		}
	}
	if len(h.Test) < 2 || (h.Test[0] != "CMD" && h.Test[0] != "CMD-SHELL") {
		return nil
	}
	h.Test = append([]string(nil), h.Test...)
	if h.Interval == 0 {
		h.Interval = defaultHealthInterval
	}
	if h.Timeout == 0 {
		h.Timeout = defaultHealthTimeout
	}
	if h.StartInterval == 0 {
		h.StartInterval = defaultHealthStartInterval
	}
	if h.Retries == 0 {
		h.Retries = defaultHealthRetries
	}
	return &h
}

// startHealth resets the health state in r, the record of a new run being committed (c.mu held);
// the caller starts healthLoop once the boot is the supervisor's.
func (c *ctr) startHealth(r *Container) {
	if r.Process.Health == nil {
		r.Health = nil
		return
	}
	r.Health = &Health{Status: HealthStarting}
}

// healthLoop runs the health check of boot b every interval until b is no longer the running boot
// of s (it exited, or the supervisor ended), recording each result and emitting a
// "health_status: <status>" event when the status changes.
func (c *ctr) healthLoop(s *supervisor, b *boot, hc HealthConfig) {
	started := time.Now()
	for {
		wait := hc.Interval
		if time.Since(started) < hc.StartPeriod && hc.StartInterval < wait {
			wait = hc.StartInterval
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return
		}
		c.mu.Lock()
		current, paused := s.boot == b, c.rec.State == StatePaused
		c.mu.Unlock()
		if !current {
			return
		}
		if paused { // a paused container is not checked (as in Docker)
			continue
		}
		res := c.probe(s.ctx, hc)
		c.mu.Lock()
		if s.boot != b {
			c.mu.Unlock()
			return
		}
		var before, after string
		inStart := res.Start.Sub(started) < hc.StartPeriod
		c.recordLocked(func(r *Container) {
			h := &Health{Status: HealthStarting}
			if r.Health != nil {
				h = r.Health // cloneRecord copied it
			}
			before = h.Status
			h.Log = append(h.Log, res)
			if len(h.Log) > healthLogSize {
				h.Log = h.Log[len(h.Log)-healthLogSize:]
			}
			switch {
			case res.ExitCode == 0:
				h.FailingStreak, h.Status = 0, HealthHealthy
			case inStart && h.Status == HealthStarting: // failures in the start period do not count
			default:
				h.FailingStreak++
				if h.FailingStreak >= hc.Retries {
					h.Status = HealthUnhealthy
				}
			}
			after = h.Status
			r.Health = h
		})
		id, name := c.rec.ID, c.rec.Name
		c.mu.Unlock()
		if after != before {
			c.e.emit("container", "health_status: "+after, id, name, nil)
		}
	}
}

// probe runs the check once in the running container.
func (c *ctr) probe(ctx context.Context, hc HealthConfig) HealthResult {
	res := HealthResult{Start: time.Now().UTC(), ExitCode: -1}
	args := hc.Test[1:]
	if hc.Test[0] == "CMD-SHELL" {
		args = []string{"/bin/sh", "-c", hc.Test[1]}
	}
	ctx, cancel := context.WithTimeout(ctx, hc.Timeout)
	defer cancel()
	done := func(out string) HealthResult {
		res.End, res.Output = time.Now().UTC(), out
		return res
	}
	c.mu.Lock()
	id := c.rec.ID
	c.mu.Unlock()
	sess, err := c.e.Exec(ctx, id, ExecOptions{Cmd: args})
	if err != nil {
		return done(guestText(err.Error()))
	}
	defer sess.Close()
	out := &capped{max: healthOutputMax}
	type result struct {
		code int
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _, _ = io.Copy(out, sess.Stdout) }()
		go func() { defer wg.Done(); _, _ = io.Copy(out, sess.Stderr) }()
		wg.Wait()
		code, err := sess.Wait()
		ch <- result{code, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return done(guestText(r.err.Error()))
		}
		res.ExitCode = r.code
		return done(guestText(out.String()))
	case <-ctx.Done():
		return done(fmt.Sprintf("Health check exceeded timeout (%v)", hc.Timeout))
	}
}

// capped is a buffer that keeps the first max bytes written to it and discards the rest.
type capped struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (w *capped) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if room := w.max - w.buf.Len(); room > 0 {
		w.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (w *capped) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
