package engine

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/skiff-containers/skiff/backend/vm"
)

// agentCallTimeout bounds each request the engine makes to a running container's agent (stats,
// exec start) and each frame it sends on the workload's stream (signal, resize). An agent that
// leaves a request unanswered that long is taken for dead: its VM is killed (never while paused).
// Generous, since a kill loses the user's workload: a busy host (a Mac swapping, a TCG guest on a
// loaded machine) can hold a live agent's answer up for seconds.
const agentCallTimeout = 30 * time.Second

// agentCall runs the agent request fn of boot b with a deadline of agentCallTimeout (sooner if ctx
// ends). When the agent does not answer in time and the container is not paused, the VM is killed
// with the reason recorded, so the workload's exit reports it, and the error wraps ErrUnresponsive.
// When ctx ends first, ctx's error is returned: the caller gave up, the agent is not to blame.
func (c *ctr) agentCall(ctx context.Context, b *boot, op string, fn func(ctx context.Context) error) error {
	actx, cancel := context.WithTimeout(ctx, agentCallTimeout)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- fn(actx) }()
	var err error
	select {
	case err = <-errc:
		if err == nil || actx.Err() == nil {
			return err // answered (an error from the agent is an answer)
		}
	case <-actx.Done():
		// fn ends soon: every agent request honours its context.
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s in %s: %w", op, c.rec.Name, ctx.Err())
	}
	c.mu.Lock()
	paused := c.rec.State == StatePaused
	c.mu.Unlock()
	if paused { // a paused guest answers nothing; it is not dead
		return fmt.Errorf("%s in %s: the container is paused: %w", op, c.rec.Name, ErrConflict)
	}
	why := fmt.Sprintf("the agent did not answer %s within %s", op, agentCallTimeout)
	if d := vm.DescribeChannel(b.machine); d != "" {
		c.e.log.Warn("unanswered agent request", zapID(c.rec.ID), zapStr("op", op), zapStr("channel", d))
	}
	c.killVM(b, why)
	return fmt.Errorf("%s in %s: %s; VM killed: %w", op, c.rec.Name, why, ErrUnresponsive)
}

// killVM kills b's VM, recording why (the first reason wins) for the exit that follows. It
// returns once the VM has ended.
func (c *ctr) killVM(b *boot, why string) {
	b.killMu.Lock()
	if b.killReason == "" {
		b.killReason = why + "; VM killed"
	}
	b.killMu.Unlock()
	c.e.log.Warn("killing a container's VM", zapID(c.rec.ID), zapStr("why", why))
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := b.machine.Stop(ctx, true); err != nil {
		c.e.log.Warn("killing a container's VM", zapID(c.rec.ID), zapErr(err))
	}
}

// killedBecause is why the engine killed b's VM, "" when it did not.
func (b *boot) killedBecause() string {
	b.killMu.Lock()
	defer b.killMu.Unlock()
	return b.killReason
}

// sendWithin runs send (a frame written on the workload's stream: a signal, a resize) and waits
// for it at most d. A write can block for good when the guest stopped reading (the stream's
// window, or the channel under it, is full); it then fails when the VM ends.
func sendWithin(d time.Duration, what string, send func() error) error {
	errc := make(chan error, 1)
	go func() { errc <- send() }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case err := <-errc:
		return err
	case <-t.C:
		return fmt.Errorf("sending %s: the agent took nothing for %s: %w", what, d, os.ErrDeadlineExceeded)
	}
}
