package engine

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/images"
	"github.com/skiff-containers/skiff/backend/vm/vmtest"
	"github.com/skiff-containers/skiff/internal/testutil"
)

// The lifecycle on the in-memory hypervisor (vmtest): no root, no QEMU, no guest kernel; the engine's
// own paths (create, boot, agent protocol, log, wait, stop, restart policy) are the real ones.
func TestLifecycleInMemory(t *testing.T) {
	ref := testutil.Registry(t) + "/busybox:latest"
	home := t.TempDir()
	st, err := images.Open(filepath.Join(home, "images"))
	if err != nil {
		t.Fatal(err)
	}
	hv := vmtest.New()
	e, err := Open(context.Background(), Config{Home: filepath.Join(home, "engine"), Log: testLogger(t), Hypervisor: hv, Images: st, ClockSync: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	f := memFixture{t: t, e: e}
	run := func(o CreateOptions, args ...string) *Container {
		t.Helper()
		o.Image, o.Cmd = ref, args
		ctx := ctxT(t, time.Minute)
		c, err := e.Create(ctx, o)
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		if err := e.Start(ctx, c.ID); err != nil {
			t.Fatalf("start: %v", err)
		}
		return c
	}

	c := run(CreateOptions{}, "echo", "hello", "memory")
	if code := f.wait(c.ID); code != 0 {
		t.Errorf("echo exited %d", code)
	}
	if out, _ := f.logs(c.ID); out != "hello memory\n" {
		t.Errorf("logs %q", out)
	}
	if c := run(CreateOptions{}, "exit", "3"); f.wait(c.ID) != 3 {
		t.Errorf("exit 3: %+v", f.inspect(c.ID))
	}

	c = run(CreateOptions{}, "sleep", "600")
	if got := f.inspect(c.ID).State; got != StateRunning {
		t.Errorf("sleeper is %s", got)
	}
	if err := e.Stop(ctxT(t, time.Minute), c.ID, nil); err != nil {
		t.Fatal(err)
	}
	if got := f.inspect(c.ID); got.State != StateExited || got.ExitCode != 143 {
		t.Errorf("after stop: %s %d, want exited 143 (SIGTERM)", got.State, got.ExitCode)
	}

	c = run(CreateOptions{Restart: RestartPolicy{Name: "on-failure", MaximumRetryCount: 2}}, "exit", "1")
	eventually(t, time.Minute, "two restarts", func() bool {
		got := f.inspect(c.ID)
		return got.State == StateExited && got.RestartCount == 2
	})

	ctx := ctxT(t, time.Minute)
	c, err = e.Create(ctx, CreateOptions{Image: ref, Cmd: []string{"nosuchcommand"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx, c.ID); !errors.Is(err, agentproto.ErrCommandNotFound) {
		t.Errorf("start of a missing command: %v, want ErrCommandNotFound", err)
	}
	// A Wait that begins after the failed start (the docker CLI's wait for the removal of a --rm
	// container races its start) ends when the container is removed, with the failure's code.
	waited := make(chan int, 1)
	go func() { code, _ := e.Wait(ctxT(t, time.Minute), c.ID); waited <- code }()
	time.Sleep(100 * time.Millisecond) // the Wait is waiting
	if err := e.Remove(ctx, c.ID, RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-waited:
		if code != 127 {
			t.Errorf("wait across the removal of a container that failed to start: %d, want 127", code)
		}
	case <-time.After(30 * time.Second):
		t.Error("a Wait on a container that failed to start did not end when it was removed")
	}
	if n := hv.Starts(); n < 7 {
		t.Errorf("%d machines started, want one per start (7)", n)
	}
}

// memFixture has the helpers of fixture (a linux-only file) for a test that runs on every OS.
type memFixture struct {
	t *testing.T
	e *Engine
}

func (f memFixture) wait(id string) int {
	f.t.Helper()
	code, err := f.e.Wait(ctxT(f.t, time.Minute), id)
	if err != nil {
		f.t.Fatalf("wait: %v", err)
	}
	return code
}

// logs returns the container's stdout.
func (f memFixture) logs(id string) (string, error) {
	ch, err := f.e.Logs(ctxT(f.t, time.Minute), id, LogOptions{})
	if err != nil {
		return "", err
	}
	var out strings.Builder
	for l := range ch {
		if l.Stream != "stderr" {
			out.Write(l.Data)
		}
	}
	return out.String(), nil
}

func (f memFixture) inspect(id string) *Container {
	f.t.Helper()
	c, err := f.e.Inspect(context.Background(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}
