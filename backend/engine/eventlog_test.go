package engine

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/images"
)

// TestEventHistory: the engine keeps its last events, bounded, replays them to EventsSince before
// the live ones, and keeps them across a restart of the engine.
func TestEventHistory(t *testing.T) {
	home := t.TempDir()
	open := func() *Engine {
		st, err := images.Open(filepath.Join(home, "images"))
		if err != nil {
			t.Fatal(err)
		}
		e, err := Open(context.Background(), Config{Home: filepath.Join(home, "engine"), Images: st})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	e := open()
	t0 := time.Now()
	for i := 0; i < eventHistoryMax+5; i++ {
		e.emit("container", "start", "id", "c", nil)
	}
	e.emit("container", "pull-progress", "id", "c", nil) // not kept
	e.emit("container", "die", "id", "c", nil)
	if h := e.EventHistory(t0, time.Time{}); len(h) != eventHistoryMax || h[len(h)-1].Action != "die" {
		t.Fatalf("history of %d, last %+v: want the last %d events", len(h), h[len(h)-1], eventHistoryMax)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	evs := e.EventsSince(ctx, time.Now().Add(-time.Hour))
	for i := 0; i < eventHistoryMax; i++ {
		<-evs
	}
	e.emit("container", "destroy", "id", "c", nil)
	if ev := <-evs; ev.Action != "destroy" {
		t.Fatalf("after the replay: %+v, want the live destroy", ev)
	}
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e = open()
	defer e.Close(context.Background())
	h := e.EventHistory(time.Time{}, time.Time{})
	if len(h) != eventHistoryMax || h[len(h)-1].Action != "destroy" {
		t.Fatalf("after a restart: %d events, last %+v", len(h), h[len(h)-1])
	}
	if h := e.EventHistory(time.Now().Add(time.Hour), time.Time{}); len(h) != 0 {
		t.Fatalf("since the future: %d events", len(h))
	}
}
