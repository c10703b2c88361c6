package engine

import (
	"context"
	"time"
)

// clockLoop resets the guests' clocks: periodically, and when the host wakes from sleep (Config.Wake).
// A guest's clock stops while the host sleeps or the VM is paused; resume resyncs on its own.
func (e *Engine) clockLoop() {
	defer e.bg.Done()
	t := time.NewTicker(e.cfg.ClockSync)
	defer t.Stop()
	wake := e.cfg.Wake
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
		case _, ok := <-wake:
			if !ok {
				wake = nil
				continue
			}
			e.log.Debug("host woke: resyncing guest clocks")
		}
		e.syncClocks()
	}
}

// syncClocks sets the clock of every running guest to the host's.
func (e *Engine) syncClocks() {
	e.mu.Lock()
	var boots []*boot
	for _, c := range e.ctrs {
		c.mu.Lock()
		if c.sup != nil && c.sup.boot != nil && c.rec.State == StateRunning {
			boots = append(boots, c.sup.boot)
		}
		c.mu.Unlock()
	}
	e.mu.Unlock()
	for _, b := range boots {
		ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
		if err := b.client.SetTime(ctx, time.Now()); err != nil {
			e.log.Debug("clock resync", zapErr(err))
		}
		cancel()
	}
}
