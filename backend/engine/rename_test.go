package engine

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Rename changes the name everywhere (lookup, the record on disk, events with the labels) and
// refuses a name in use or an invalid one. The names are not hex, so no ID prefix can answer for them.
func TestRename(t *testing.T) {
	home := t.TempDir()
	e, err := Open(context.Background(), Config{Home: home})
	if err != nil {
		t.Fatal(err)
	}
	a := recordOnDisk(t, e, "first")
	a.Config.Labels = map[string]string{"com.docker.compose.project": "p"}
	if err := e.saveRecord(&a); err != nil {
		t.Fatal(err)
	}
	recordOnDisk(t, e, "second")
	e.Close(context.Background())
	e, err = Open(context.Background(), Config{Home: home})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { e.Close(context.Background()) }()
	ctx := ctxT(t, time.Minute)
	evs := e.Events(ctx)
	if err := e.Rename(ctx, "first", "second"); !errors.Is(err, ErrConflict) {
		t.Errorf("rename to a name in use: %v, want ErrConflict", err)
	}
	if err := e.Rename(ctx, "first", "bad name"); !errors.Is(err, ErrInvalid) {
		t.Errorf("rename to an invalid name: %v, want ErrInvalid", err)
	}
	if err := e.Rename(ctx, "nope", "c"); !errors.Is(err, ErrNotFound) {
		t.Errorf("rename of a missing container: %v, want ErrNotFound", err)
	}
	if err := e.Rename(ctx, a.ShortID(), "/renamed"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Inspect(ctx, "first"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the old name still finds it: %v", err)
	}
	select {
	case ev := <-evs:
		if ev.Action != "rename" || ev.Name != "renamed" || ev.Attributes["oldName"] != "/first" ||
			ev.Attributes["com.docker.compose.project"] != "p" {
			t.Errorf("event %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Error("no rename event")
	}
	e.Close(context.Background())
	e, err = Open(context.Background(), Config{Home: home})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := e.Inspect(ctx, "renamed"); err != nil || got.ID != a.ID {
		t.Errorf("after an engine restart: %+v, %v", got, err)
	}
	if err := e.Rename(ctx, "second", "first"); err != nil {
		t.Errorf("the old name is free again: %v", err)
	}
}
