package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestRecordsAndLock(t *testing.T) {
	home := t.TempDir()
	e, err := Open(context.Background(), Config{Home: home})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), Config{Home: home}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second engine on the same dir: %v, want ErrLocked", err)
	}
	rec := Container{ID: NewID(), Name: "r1", State: StateExited, ExitCode: 3, Created: time.Now().UTC(),
		Config: CreateOptions{Image: "busybox", Labels: map[string]string{"a": "b"}, Restart: RestartPolicy{Name: "no"}}}
	if err := os.MkdirAll(e.containerDir(rec.ID), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := e.saveRecord(&rec); err != nil {
		t.Fatal(err)
	}
	// A half-created container dir (no record) is cleaned up on load; no temp files remain.
	stray := e.containerDir(NewID())
	_ = os.MkdirAll(stray, 0o700)
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e2, err := Open(context.Background(), Config{Home: home})
	if err != nil {
		t.Fatalf("reopen after Close: %v", err)
	}
	defer e2.Close(context.Background())
	got, err := e2.Inspect(context.Background(), "r1")
	if err != nil || got.ExitCode != 3 || got.Config.Labels["a"] != "b" || got.ID != rec.ID {
		t.Fatalf("reloaded record %+v, %v", got, err)
	}
	if _, err := e2.Inspect(context.Background(), rec.ID[:5]); err != nil {
		t.Errorf("lookup by prefix: %v", err)
	}
	if _, err := os.Stat(stray); !os.IsNotExist(err) {
		t.Errorf("stray container dir not removed: %v", err)
	}
	ents, _ := os.ReadDir(e2.containerDir(rec.ID))
	for _, ent := range ents {
		if ent.Name() != recordFile {
			t.Errorf("unexpected file %s next to the record", ent.Name())
		}
	}
	if _, err := e2.Inspect(context.Background(), "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing container: %v", err)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f.json")
	if err := writeFileAtomic(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(p, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	fi, _ := os.Stat(p)
	if string(b) != "two" || fi.Mode().Perm() != 0o600 {
		t.Errorf("content %q mode %v", b, fi.Mode())
	}
	ents, _ := os.ReadDir(filepath.Dir(p))
	if len(ents) != 1 {
		t.Errorf("temp files left: %v", ents)
	}
	// Into a read-only dir it fails cleanly instead of writing in place.
	if os.Geteuid() != 0 {
		ro := t.TempDir()
		_ = os.Chmod(ro, 0o500)
		if err := writeFileAtomic(filepath.Join(ro, "x"), []byte("x"), 0o600); !errors.Is(err, syscall.EACCES) {
			t.Errorf("read-only dir: %v", err)
		}
	}
}

func TestEventBus(t *testing.T) {
	b := newEventBus()
	ctx, cancel := context.WithCancel(context.Background())
	ch := b.subscribe(ctx)
	for i := 0; i < 3; i++ {
		b.publish(Event{Action: "a", ID: string(rune('0' + i))})
	}
	for i := 0; i < 3; i++ {
		if ev := <-ch; ev.ID != string(rune('0'+i)) {
			t.Fatalf("event %d: %+v", i, ev)
		}
	}
	// A subscriber that never reads does not block publishers; past its queue it loses the oldest.
	slow := b.subscribe(context.Background())
	for i := 0; i < 3*eventQueueMax; i++ {
		b.publish(Event{Action: "flood"})
	}
	cancel()
	for range ch {
	}
	b.close()
	n := 0
	for range slow {
		n++
	}
	if n == 0 || n > 2*eventQueueMax {
		t.Errorf("slow subscriber got %d events", n)
	}
}

// TestReconcile: records left by an engine that died are marked exited, restart times kept, and a
// Stop calls off a pending restart.
func TestReconcile(t *testing.T) {
	home := t.TempDir()
	e, err := Open(context.Background(), Config{Home: home})
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour).UTC()
	recs := []Container{
		{ID: NewID(), Name: "was-running", State: StateRunning, Config: CreateOptions{Restart: RestartPolicy{Name: "no"}}},
		{ID: NewID(), Name: "backing-off", State: StateRestarting, NextRestart: later, RestartCount: 3,
			Config: CreateOptions{Restart: RestartPolicy{Name: "on-failure"}}},
	}
	for i := range recs {
		_ = os.MkdirAll(e.containerDir(recs[i].ID), 0o700)
		if err := e.saveRecord(&recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	e.Close(context.Background())

	e, err = Open(context.Background(), Config{Home: home})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	ctx := context.Background()
	got, _ := e.Inspect(ctx, "was-running")
	if got.State != StateExited || got.ExitCode != 255 || got.Error == "" {
		t.Errorf("was running: %s %d %q", got.State, got.ExitCode, got.Error)
	}
	got, _ = e.Inspect(ctx, "backing-off")
	if got.State != StateRestarting || !got.NextRestart.Equal(later) || got.RestartCount != 3 {
		t.Errorf("backing off: %s next %v count %d", got.State, got.NextRestart, got.RestartCount)
	}
	if err := e.Stop(ctx, "backing-off", nil); err != nil {
		t.Fatal(err)
	}
	got, _ = e.Inspect(ctx, "backing-off")
	c, _ := e.lookup("backing-off")
	if got.State != StateExited || !got.ManuallyStopped || !got.NextRestart.IsZero() || c.scheduled {
		t.Errorf("stop of a pending restart: %s manual %v next %v scheduled %v", got.State, got.ManuallyStopped, got.NextRestart, c.scheduled)
	}
}

// A lock taken with LockHome is handed to Open, which keeps it until Close; an Open that fails
// (here: the lock is of another directory) releases it.
func TestLockTakenBeforeOpen(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	lk, err := LockHome(home)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockHome(home); !errors.Is(err, ErrLocked) {
		t.Fatalf("second LockHome: %v, want ErrLocked", err)
	}
	if _, err := Open(ctx, Config{Home: home}); !errors.Is(err, ErrLocked) {
		t.Fatalf("Open without the lock: %v, want ErrLocked", err)
	}
	e, err := Open(ctx, Config{Home: home, Lock: lk})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockHome(home); !errors.Is(err, ErrLocked) {
		t.Fatalf("LockHome while the engine runs: %v, want ErrLocked", err)
	}
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	lk, err = LockHome(home)
	if err != nil {
		t.Fatalf("LockHome after Close: %v", err)
	}
	if _, err := Open(ctx, Config{Home: t.TempDir(), Lock: lk}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Open with the lock of another dir: %v, want ErrInvalid", err)
	}
	lk, err = LockHome(home)
	if err != nil {
		t.Fatalf("the failed Open kept the lock: %v", err)
	}
	lk.Release()
}
