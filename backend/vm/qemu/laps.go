package qemu

import (
	"time"

	"go.uber.org/zap"
)

// laps times the phases of a machine's start for its debug log: each mark
// records the time since the previous one under the phase's name.
type laps struct {
	start, last time.Time
	names       []string
	took        []time.Duration
}

func newLaps() *laps {
	now := time.Now()
	return &laps{start: now, last: now}
}

// mark ends the phase name.
func (l *laps) mark(name string) {
	now := time.Now()
	l.names = append(l.names, name)
	l.took = append(l.took, now.Sub(l.last))
	l.last = now
}

// fields are the phases' durations and the total, for a log line.
func (l *laps) fields() []zap.Field {
	f := make([]zap.Field, 0, len(l.names)+1)
	for i, n := range l.names {
		f = append(f, zap.Duration(n, l.took[i]))
	}
	return append(f, zap.Duration("total", time.Since(l.start)))
}
