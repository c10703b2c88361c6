//go:build linux

package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// freezeVM SIGSTOPs the qemu process of a container's VM: the guest stops answering while its
// channel stays connected. It is continued at cleanup, should it still exist.
func freezeVM(t *testing.T, e *Engine, id string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.stateDir(id), "qemu.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.Fields(string(b) + " x")[0])
	if err != nil {
		t.Fatalf("qemu.pid: %v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
	return pid
}

// returnsWithin runs f and fails the test when it has not returned after d.
func returnsWithin(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}

// gone reports whether the process pid no longer exists (it may linger as a zombie for a moment).
func gone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && strings.HasPrefix(s[i+1:], " Z")
}

// TestEngineQEMUFrozenAgent: a container whose VM stops answering (qemu SIGSTOPped) turns into a
// killed VM and an exited container with the reason in its Error, never a hang: through a Stats
// call without a deadline, through Stop, and through a forced Remove.
func TestEngineQEMUFrozenAgent(t *testing.T) {
	e, host, _ := qemuEngine(t)
	f := &fixture{t: t, e: e}
	ctx := ctxT(t, 10*time.Minute)
	run := func(name string) *Container {
		c, err := e.Create(ctx, CreateOptions{Name: name, Image: host + "/busybox:latest",
			Cmd: []string{"sh", "-c", "echo up; exec sleep 1000"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Start(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		waitLog(t, f, c.ID, "up")
		if _, err := e.Stats(ctx, c.ID); err != nil {
			t.Fatalf("stats of a live container: %v", err)
		}
		return c
	}
	// The VM killed, the container exited with the reason.
	killed := func(c *Container, pid int, why string) {
		t.Helper()
		eventually(t, 30*time.Second, "the frozen VM's qemu to be killed", func() bool { return gone(pid) })
		got := f.inspect(c.ID)
		if got.State != StateExited || !strings.Contains(got.Error, why) || !strings.Contains(got.Error, "VM killed") {
			t.Errorf("container after its agent went silent: state %s, error %q (want exited, %q)", got.State, got.Error, why)
		}
	}

	{ // a Stats call without a deadline
		c := run("frozen-stats")
		pid := freezeVM(t, e, c.ID)
		start := time.Now()
		var err error
		returnsWithin(t, agentCallTimeout+30*time.Second, "Stats of a frozen container", func() {
			_, err = e.Stats(context.Background(), c.ID)
		})
		if !errors.Is(err, ErrUnresponsive) {
			t.Errorf("stats of a frozen container after %v: %v, want ErrUnresponsive", time.Since(start), err)
		}
		killed(c, pid, "did not answer stats within")
		if _, err := e.Wait(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		if err := e.Remove(ctx, c.ID, RemoveOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	{ // Stop
		c := run("frozen-stop")
		pid := freezeVM(t, e, c.ID)
		one := time.Second
		returnsWithin(t, 45*time.Second, "Stop of a frozen container", func() {
			if err := e.Stop(context.Background(), c.ID, &one); err != nil {
				t.Errorf("stop: %v", err)
			}
		})
		killed(c, pid, "did not exit")
		if err := e.Remove(ctx, c.ID, RemoveOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	{ // rm -f
		c := run("frozen-rm")
		pid := freezeVM(t, e, c.ID)
		returnsWithin(t, 45*time.Second, "forced Remove of a frozen container", func() {
			if err := e.Remove(context.Background(), c.ID, RemoveOptions{Force: true}); err != nil {
				t.Errorf("rm -f: %v", err)
			}
		})
		eventually(t, 30*time.Second, "the frozen VM's qemu to be killed", func() bool { return gone(pid) })
		if _, err := e.Inspect(ctx, c.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("inspect after rm -f: %v", err)
		}
	}
}
