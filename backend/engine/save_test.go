//go:build linux

package engine

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// readOnly bind-mounts dir read-only over itself (as a full disk or a failing store would, every
// save into it fails); the returned func makes it writable again.
func readOnly(t *testing.T, dir string) func() {
	t.Helper()
	if err := syscall.Mount(dir, dir, "", syscall.MS_BIND, ""); err != nil {
		t.Skipf("bind mount (needs root): %v", err)
	}
	undo := func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) }
	t.Cleanup(undo)
	if err := syscall.Mount("", dir, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
		undo()
		t.Skipf("read-only remount: %v", err)
	}
	return undo
}

// onDisk reads a container's record file.
func onDisk(t *testing.T, e *Engine, id string) Container {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.containerDir(id), recordFile))
	if err != nil {
		t.Fatal(err)
	}
	var c Container
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// sameRecord fails the test when the engine's record and the file disagree on what changes.
func sameRecord(t *testing.T, e *Engine, id string) *Container {
	t.Helper()
	mem, err := e.Inspect(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	disk := onDisk(t, e, id)
	if mem.State != disk.State || mem.ManuallyStopped != disk.ManuallyStopped || !mem.NextRestart.Equal(disk.NextRestart) ||
		mem.ExitCode != disk.ExitCode || mem.Error != disk.Error || mem.RestartCount != disk.RestartCount {
		t.Fatalf("engine and data dir disagree:\nmemory %s manual=%v next=%v code=%d error=%q restarts=%d\ndisk   %s manual=%v next=%v code=%d error=%q restarts=%d",
			mem.State, mem.ManuallyStopped, mem.NextRestart, mem.ExitCode, mem.Error, mem.RestartCount,
			disk.State, disk.ManuallyStopped, disk.NextRestart, disk.ExitCode, disk.Error, disk.RestartCount)
	}
	return mem
}

// A Stop whose record cannot be saved fails with the error and changes nothing: the pending
// restart stays, in the engine and in the file alike.
func TestStopFailsWhenTheRecordCannotBeSaved(t *testing.T) {
	home := t.TempDir()
	ctx := context.Background()
	e, err := Open(ctx, Config{Home: home, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour).UTC()
	rec := Container{ID: NewID(), Name: "backing-off", State: StateRestarting, NextRestart: later, RestartCount: 2,
		Created: time.Now().UTC(), Config: CreateOptions{Image: "busybox", Restart: RestartPolicy{Name: "on-failure"}}}
	if err := os.MkdirAll(e.containerDir(rec.ID), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := e.saveRecord(&rec); err != nil {
		t.Fatal(err)
	}
	e.Close(ctx)
	e, err = Open(ctx, Config{Home: home, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)

	writable := readOnly(t, e.containerDir(rec.ID))
	if err := e.Stop(ctx, rec.ID, nil); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("stop with an unwritable record: %v, want the save's error (EROFS)", err)
	}
	got := sameRecord(t, e, rec.ID)
	if got.State != StateRestarting || got.ManuallyStopped || !got.NextRestart.Equal(later) {
		t.Fatalf("a failed stop changed the record: %s manual=%v next=%v", got.State, got.ManuallyStopped, got.NextRestart)
	}
	writable()
	if err := e.Stop(ctx, rec.ID, nil); err != nil {
		t.Fatal(err)
	}
	if got := sameRecord(t, e, rec.ID); got.State != StateExited || !got.ManuallyStopped {
		t.Fatalf("stop once the record can be saved: %s manual=%v", got.State, got.ManuallyStopped)
	}
}
