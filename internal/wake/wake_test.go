package wake

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestDetector(t *testing.T) {
	base := time.Date(2026, 11, 28, 20, 0, 0, 0, time.UTC)
	type sample struct {
		wall time.Duration // since base
		mono time.Duration
		jump time.Duration
		fire bool
	}
	tests := []struct {
		name    string
		samples []sample
	}{
		{"clocks in step", []sample{{0, 0, 0, false}, {5 * time.Second, 5 * time.Second, 0, false}, {10 * time.Second, 10 * time.Second, 0, false}}},
		{"late tick under load is no jump", []sample{{0, 0, 0, false}, {40 * time.Second, 40 * time.Second, 0, false}}},
		{"slept ten minutes", []sample{{0, 0, 0, false}, {10*time.Minute + 5*time.Second, 5 * time.Second, 10 * time.Minute, true}}},
		{"small drift below threshold", []sample{{0, 0, 0, false}, {6500 * time.Millisecond, 5 * time.Second, 1500 * time.Millisecond, false}}},
		{"exactly the threshold", []sample{{0, 0, 0, false}, {7 * time.Second, 5 * time.Second, 2 * time.Second, true}}},
		{"clock set back", []sample{{0, 0, 0, false}, {-time.Hour + 5*time.Second, 5 * time.Second, -time.Hour, true}}},
		{"one event per jump", []sample{{0, 0, 0, false}, {time.Hour, 5 * time.Second, time.Hour - 5*time.Second, true}, {time.Hour + 5*time.Second, 10 * time.Second, 0, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := detector{threshold: Threshold}
			for i, s := range tt.samples {
				jump, fire := d.observe(base.Add(s.wall), s.mono)
				if jump != s.jump || fire != s.fire {
					t.Errorf("sample %d: jump %v fire %v, want %v %v", i, jump, fire, s.jump, s.fire)
				}
			}
		})
	}
}

// fakeClock is advanced by the test; the watcher reads it on each tick.
type fakeClock struct {
	mu   sync.Mutex // guards wall and mono
	wall time.Time
	mono time.Duration
}

func (c *fakeClock) advance(wall, mono time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wall, c.mono = c.wall.Add(wall), c.mono+mono
}

func (c *fakeClock) clock() clock {
	return clock{
		wall: func() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.wall },
		mono: func() time.Duration { c.mu.Lock(); defer c.mu.Unlock(); return c.mono },
	}
}

func TestWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fc := &fakeClock{wall: time.Date(2026, 11, 28, 20, 0, 0, 0, time.UTC)}
	ticks := make(chan time.Time)
	platform := make(chan struct{})
	events := watch(ctx, fc.clock(), ticks, platform)

	tick := func() { ticks <- time.Time{} } // unbuffered: returns once the watcher has it
	expect := func(what string, want bool) {
		t.Helper()
		// A second tick proves the watcher finished handling the first.
		fc.advance(Interval, Interval)
		tick()
		select {
		case <-events:
			if !want {
				t.Fatalf("%s: unexpected wake event", what)
			}
		default:
			if want {
				t.Fatalf("%s: no wake event", what)
			}
		}
	}

	fc.advance(Interval, Interval)
	tick()
	expect("normal ticks", false)

	fc.advance(30*time.Minute, Interval) // the host slept for half an hour
	tick()
	expect("after sleep", true)
	expect("the tick after", false)

	// Two jumps with nobody reading coalesce into one event.
	fc.advance(time.Hour, Interval)
	tick()
	fc.advance(time.Hour, Interval)
	tick()
	expect("two jumps", true)
	expect("coalesced", false)

	// A platform notification fires at once, and the detector does not
	// report the same sleep again at its next tick.
	fc.advance(20*time.Minute, 0)
	platform <- struct{}{}
	expect("platform wake", true)
	expect("no duplicate from the detector", false)

	cancel()
	select {
	case _, ok := <-events:
		if ok {
			for range events {
			}
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed after cancel")
	}
}

// Watch with the real clocks: no spurious event right away, closed on cancel.
func TestWatchReal(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	events := Watch(ctx)
	select {
	case <-events:
		t.Fatal("wake event without a sleep")
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	select {
	case <-events:
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed after cancel")
	}
}
