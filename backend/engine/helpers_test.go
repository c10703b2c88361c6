package engine

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

func testLogger(t testing.TB) *zap.Logger {
	if os.Getenv("SKIFF_TEST_LOG") != "" {
		return zaptest.NewLogger(t)
	}
	return zap.NewNop()
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds or d passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// recordOnDisk writes a container record the way Create leaves it, with a rootfs.
func recordOnDisk(t *testing.T, e *Engine, name string) Container {
	t.Helper()
	rec := Container{ID: NewID(), Name: name, State: StateExited, Created: time.Now().UTC(),
		Config: CreateOptions{Image: "busybox", Restart: RestartPolicy{Name: "no"}}}
	rec.RootFS = filepath.Join(e.containerDir(rec.ID), "rootfs")
	if err := os.MkdirAll(filepath.Join(rec.RootFS, "busy"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := e.saveRecord(&rec); err != nil {
		t.Fatal(err)
	}
	return rec
}
