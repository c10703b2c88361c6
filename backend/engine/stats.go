package engine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
)

// statsSampler keeps the previous sample of a boot so CPU% is a delta.
type statsSampler struct {
	mu     sync.Mutex // guards prev
	prev   *agentproto.Stats
	prevAt time.Time
}

// sample reads the guest's figures. CPU% is the CPU time used since the previous sample over the wall
// time elapsed times the guest's CPUs (100 = every vCPU busy). The two samples are at least minGap
// apart (without a recent previous sample it takes one first). read asks the agent.
func (s *statsSampler) sample(ctx context.Context, minGap time.Duration, read func(context.Context) (*agentproto.Stats, error)) (*Stats, error) {
	s.mu.Lock()
	prev, prevAt := s.prev, s.prevAt
	s.mu.Unlock()
	if prev == nil || time.Since(prevAt) > 30*time.Second {
		p, err := read(ctx)
		if err != nil {
			return nil, err
		}
		prev, prevAt = p, time.Now()
	}
	// CPU time is accounted in ticks: a too short interval reads as 0% or spikes.
	if wait := minGap - time.Since(prevAt); wait > 0 {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	cur, err := read(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	s.mu.Lock()
	s.prev, s.prevAt = cur, now
	s.mu.Unlock()
	return computeStats(prev, cur, now.Sub(prevAt)), nil
}

func computeStats(prev, cur *agentproto.Stats, wall time.Duration) *Stats {
	out := &Stats{
		Time: cur.Time, MemoryUsage: cur.MemoryUsage, MemoryLimit: cur.MemoryLimit,
		NetRx: cur.NetRxBytes, NetTx: cur.NetTxBytes, BlockRead: cur.BlockReadBytes,
		BlockWrite: cur.BlockWriteBytes, PIDs: cur.PIDs, CPUs: cur.CPUs,
	}
	if out.Time.IsZero() {
		out.Time = time.Now().UTC()
	}
	// Prefer the guest's own clock for the interval when both samples carry it.
	if !prev.Time.IsZero() && !cur.Time.IsZero() && cur.Time.After(prev.Time) {
		wall = cur.Time.Sub(prev.Time)
	}
	cpus := cur.CPUs
	if cpus < 1 {
		cpus = 1
	}
	if wall > 0 && cur.CPUUsageNanos >= prev.CPUUsageNanos {
		pct := float64(cur.CPUUsageNanos-prev.CPUUsageNanos) / float64(wall.Nanoseconds()) / float64(cpus) * 100
		if pct > 100 {
			pct = 100
		}
		out.CPUPercent = pct
	}
	return out
}

// Stats returns one sample of a running container's resource use.
func (e *Engine) Stats(ctx context.Context, id string) (*Stats, error) {
	c, err := e.lookup(id)
	if err != nil {
		return nil, err
	}
	b, err := c.runningBoot()
	if err != nil {
		return nil, err
	}
	st, err := b.stats.sample(ctx, 250*time.Millisecond, c.readStats(b))
	if err != nil {
		return nil, fmt.Errorf("stats of %s: %w", c.rec.Name, err)
	}
	st.HostMemory = hostMemory(b.machine)
	return st, nil
}

// hostMemory is what m costs the host in memory, bytes (vm.HostMemoryReporter); 0 when its
// hypervisor cannot tell.
func hostMemory(m vm.Machine) uint64 {
	r, ok := m.(vm.HostMemoryReporter)
	if !ok {
		return 0
	}
	n, err := r.HostMemory()
	if err != nil {
		return 0
	}
	return n
}

// runningBoot is the current boot of a running (not paused) container: a paused VM answers no
// request.
func (c *ctr) runningBoot() (*boot, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := c.currentBootLocked()
	if err == nil && c.rec.State == StatePaused {
		err = fmt.Errorf("container %s is paused: %w", c.rec.Name, ErrConflict)
	}
	return b, err
}

// readStats asks b's agent for its figures, within agentCallTimeout (see agentCall).
func (c *ctr) readStats(b *boot) func(context.Context) (*agentproto.Stats, error) {
	return func(ctx context.Context) (*agentproto.Stats, error) {
		var st *agentproto.Stats
		err := c.agentCall(ctx, b, "stats", func(ctx context.Context) error {
			var err error
			st, err = b.client.Stats(ctx)
			return err
		})
		return st, err
	}
}

// StatsStream sends a sample every interval (0: one second) while the container runs; the channel
// closes when ctx ends or the container stops.
func (e *Engine) StatsStream(ctx context.Context, id string, interval time.Duration) (<-chan Stats, error) {
	c, err := e.lookup(id)
	if err != nil {
		return nil, err
	}
	if _, err := c.currentBoot(); err != nil {
		return nil, err
	}
	if interval <= 0 {
		interval = time.Second
	}
	out := make(chan Stats, 1)
	go func() {
		defer close(out)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if _, err := c.currentBoot(); err != nil {
				return
			}
			b, err := c.runningBoot()
			var st *Stats
			if err == nil { // paused: no sample until resumed
				st, err = b.stats.sample(ctx, interval, c.readStats(b))
			}
			if err == nil {
				st.HostMemory = hostMemory(b.machine)
			}
			if err == nil {
				select {
				case out <- *st:
				case <-ctx.Done():
					return
				}
			} else if ctx.Err() != nil {
				return
			}
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
