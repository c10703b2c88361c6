//go:build linux

package engine

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRestoredRunPath runs short containers restored from the warm-up's boot snapshot, as `run
// --rm busybox true` does, and checks what their start and end cost the guest and the host.
func TestRestoredRunPath(t *testing.T) {
	cfg, host, snapshots := qemuConfig(t)
	cfg.GuestDebug = true
	e, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		e.Close(ctx)
	})
	f := &fixture{t: t, e: e}
	ctx := ctxT(t, 5*time.Minute)
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if m, _ := filepath.Glob(filepath.Join(snapshots, "snapshots", "*", "meta.json")); len(m) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no boot snapshot 2 min after the engine opened with WarmUp")
		}
	}

	// A kept container: with Config.GuestDebug its console log has the agent's debug trace, from
	// the restore on (the template booted without it), with the restored VM's own logger.
	kept, err := e.Create(ctx, CreateOptions{Image: host + "/busybox:latest", Cmd: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx, kept.ID); err != nil {
		t.Fatal(err)
	}
	if code := f.wait(kept.ID); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	rc, err := e.ConsoleLog(ctx, kept.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	console := string(b)
	if !strings.Contains(console, "restored from boot snapshot") {
		t.Fatalf("the VM was not restored from the warm-up's snapshot; console:\n%s", console)
	}
	for _, want := range []string{"DEBUG\trestored from a snapshot", "DEBUG\trootfs mounted", "]\tINFO\tagent channel on the shared-memory ring"} {
		if !strings.Contains(console, want) {
			t.Errorf("console log without %q (the guest's debug trace, timed); console:\n%s", want, console)
		}
	}
	if os.Getenv("SKIFF_TEST_LOG") != "" {
		t.Logf("console:\n%s", console)
	}
}
