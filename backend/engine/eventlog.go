package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// eventHistoryMax bounds the events the engine keeps for replay (Docker's `events --since`).
const eventHistoryMax = 1000

// eventLogName is the file under the data dir that keeps the history across engine restarts
// (written at Close, read at Open).
const eventLogName = "events.json"

// record keeps ev in the bounded history (under b.mu). Pull progress is not kept: it is many
// events a second and nobody replays it.
func (b *eventBus) record(ev Event) {
	if ev.Action == "pull-progress" {
		return
	}
	if len(b.hist) >= eventHistoryMax {
		b.hist = append(b.hist[:0], b.hist[len(b.hist)-eventHistoryMax+1:]...)
	}
	b.hist = append(b.hist, ev)
}

// since is the history from t on (all of it when t is zero) up to until (none past it when until
// is not zero), oldest first (under b.mu).
func (b *eventBus) since(t, until time.Time) []Event {
	var out []Event
	for _, ev := range b.hist {
		if ev.Time.Before(t) || (!until.IsZero() && ev.Time.After(until)) {
			continue
		}
		out = append(out, ev)
	}
	return out
}

// EventsSince is Events preceded by the kept events from since on (at most the last 1000,
// kept across engine restarts): nothing between the replay and the live stream is lost or doubled.
func (e *Engine) EventsSince(ctx context.Context, since time.Time) <-chan Event {
	return e.events.subscribeFrom(ctx, &since)
}

// EventHistory is the kept events from since to until, oldest first.
func (e *Engine) EventHistory(since, until time.Time) []Event {
	e.events.mu.Lock()
	defer e.events.mu.Unlock()
	return e.events.since(since, until)
}

// loadHistory reads the history a previous engine saved; a missing or unreadable file is an empty
// history (it is a convenience, not state).
func (b *eventBus) loadHistory(home string) error {
	data, err := os.ReadFile(filepath.Join(home, eventLogName))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the event history: %w", err)
	}
	var hist []Event
	if err := json.Unmarshal(data, &hist); err != nil {
		return fmt.Errorf("event history %s: %w", filepath.Join(home, eventLogName), err)
	}
	if len(hist) > eventHistoryMax {
		hist = hist[len(hist)-eventHistoryMax:]
	}
	b.mu.Lock()
	b.hist = hist
	b.mu.Unlock()
	return nil
}

// saveHistory writes the history for the next engine.
func (b *eventBus) saveHistory(home string) error {
	b.mu.Lock()
	data, err := json.Marshal(b.hist)
	b.mu.Unlock()
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(home, eventLogName), data, 0o600)
}
