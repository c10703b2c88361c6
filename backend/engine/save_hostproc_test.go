//go:build linux

package engine

import (
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Kill, Pause and Stop of a running container whose record cannot be saved fail with the save's
// error and leave the container running, as its record (in the engine and on disk) says.
func TestLifecycleFailsWhenTheRecordCannotBeSaved(t *testing.T) {
	f := newFixture(t)
	c := f.run(CreateOptions{}, `echo up; while :; do echo tick; sleep 0.1; done`)
	ctx := ctxT(t, 2*time.Minute)
	waitLog(t, f, c.ID, "up")
	writable := readOnly(t, f.e.containerDir(c.ID))

	if err := f.e.Kill(ctx, c.ID, "KILL"); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("kill: %v, want EROFS", err)
	}
	if got := sameRecord(t, f.e, c.ID); got.State != StateRunning || got.ManuallyStopped {
		t.Fatalf("after a failed kill: %s manual=%v", got.State, got.ManuallyStopped)
	}
	zero := time.Duration(0)
	if err := f.e.Stop(ctx, c.ID, &zero); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("stop: %v, want EROFS", err)
	}
	if got := sameRecord(t, f.e, c.ID); got.State != StateRunning || got.ManuallyStopped {
		t.Fatalf("after a failed stop: %s manual=%v", got.State, got.ManuallyStopped)
	}
	err := f.e.Pause(ctx, c.ID)
	switch {
	case err != nil && (errors.Is(err, ErrNotSupported) || strings.Contains(err.Error(), "not supported")):
		t.Logf("pause not supported by this hypervisor: %v", err)
	case !errors.Is(err, syscall.EROFS):
		t.Fatalf("pause: %v, want EROFS", err)
	default:
		if got := sameRecord(t, f.e, c.ID); got.State != StateRunning {
			t.Fatalf("after a failed pause: %s", got.State)
		}
		// The workload was not left frozen: its output goes on.
		before, _ := f.logs(c.ID)
		time.Sleep(time.Second)
		if after, _ := f.logs(c.ID); strings.Count(after, "tick") <= strings.Count(before, "tick") {
			t.Error("the workload stopped printing after a failed pause: left paused")
		}
	}
	// Still running for real: it ends only now, with a stop that can be recorded.
	writable()
	if err := f.e.Stop(ctx, c.ID, &zero); err != nil {
		t.Fatal(err)
	}
	if got := sameRecord(t, f.e, c.ID); got.State != StateExited || !got.ManuallyStopped {
		t.Fatalf("after stop: %s manual=%v", got.State, got.ManuallyStopped)
	}
}
