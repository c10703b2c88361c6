// Package wake tells a long-running host process that the machine has just
// woken from sleep, so it can resynchronise guest clocks and re-check VMs.
//
// Two sources feed one channel:
//   - everywhere, a jump detector: every 5 s it compares how far the wall
//     clock moved with how far the monotonic clock moved. The monotonic clock
//     stops while the host sleeps (CLOCK_MONOTONIC on Linux,
//     mach_absolute_time on macOS) and the wall clock does not, so after a
//     sleep the wall clock is ahead by the time slept. A wall-clock step of
//     the same size (NTP, the user setting the time) fires too, which is what
//     a clock resync wants anyway.
//   - on macOS, NSWorkspaceDidWakeNotification (delivered on the main run
//     loop, so only in a process that runs one, such as the desktop app).
//
// Usage:
//
//	for range wake.Watch(ctx) {
//		engine.ResyncClocks(ctx)
//	}
//
// Events are coalesced: a receiver that is busy gets one event, not a queue.
package wake

import (
	"context"
	"time"
)

const (
	// Interval is how often the jump detector samples the clocks.
	Interval = 5 * time.Second
	// Threshold is how far the wall clock must move beyond the monotonic
	// clock between two samples to count as a wake (or a clock step).
	Threshold = 2 * time.Second
)

// Watch returns a channel that receives a value after each wake from sleep
// detected while ctx is live. The channel is closed when ctx is done.
func Watch(ctx context.Context) <-chan struct{} {
	ticker := time.NewTicker(Interval)
	out := watch(ctx, realClock(), ticker.C, platformEvents(ctx))
	go func() {
		<-ctx.Done()
		ticker.Stop()
	}()
	return out
}

// clock reads the two clocks the detector compares.
type clock struct {
	wall func() time.Time     // wall-clock time, without a monotonic reading
	mono func() time.Duration // monotonic time since an arbitrary origin
}

func realClock() clock {
	origin := time.Now()
	return clock{
		wall: func() time.Time { return time.Now().Round(0) }, // Round(0) strips the monotonic reading
		mono: func() time.Duration { return time.Since(origin) },
	}
}

// watch owns the output channel: it samples clk on every tick and forwards
// platform events (nil when the platform has none) until ctx is done.
func watch(ctx context.Context, clk clock, ticks <-chan time.Time, platform <-chan struct{}) <-chan struct{} {
	out := make(chan struct{}, 1)
	d := detector{threshold: Threshold}
	d.observe(clk.wall(), clk.mono())
	go func() {
		defer close(out)
		for {
			fire := false
			select {
			case <-ctx.Done():
				return
			case <-ticks:
				_, fire = d.observe(clk.wall(), clk.mono())
			case <-platform:
				fire = true
				// The detector would report the same sleep at its next tick:
				// restart its baseline so one wake yields one event.
				d.reset()
				d.observe(clk.wall(), clk.mono())
			}
			if fire {
				select {
				case out <- struct{}{}:
				default: // one is already pending
				}
			}
		}
	}()
	return out
}

// detector finds wall-clock jumps relative to the monotonic clock.
type detector struct {
	threshold time.Duration
	primed    bool
	lastWall  time.Time
	lastMono  time.Duration
}

// observe records a sample and reports the jump since the previous one (how
// much further the wall clock moved than the monotonic clock; negative when
// the wall clock was set back) and whether its size reaches the threshold.
func (d *detector) observe(wall time.Time, mono time.Duration) (jump time.Duration, fired bool) {
	if d.primed {
		jump = wall.Sub(d.lastWall) - (mono - d.lastMono)
	}
	d.primed, d.lastWall, d.lastMono = true, wall, mono
	return jump, jump >= d.threshold || jump <= -d.threshold
}

func (d *detector) reset() { d.primed = false }
