//go:build linux

package engine

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/internal/testutil"
)

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
		st, err := e.Stats(ctx, c.ID)
		if err != nil {
			t.Fatalf("stats of a live container: %v", err)
		}
		// The VM's own cost, seen from the host: at least the guest memory the workload uses.
		if st.HostMemory < st.MemoryUsage || st.HostMemory < 16<<20 {
			t.Errorf("stats: host memory %d bytes, guest memory usage %d", st.HostMemory, st.MemoryUsage)
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
		pid := testutil.FreezeQEMU(t, e.stateDir(c.ID))
		start := time.Now()
		var err error
		testutil.ReturnsWithin(t, agentCallTimeout+30*time.Second, "Stats of a frozen container", func() {
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
		pid := testutil.FreezeQEMU(t, e.stateDir(c.ID))
		one := time.Second
		testutil.ReturnsWithin(t, 45*time.Second, "Stop of a frozen container", func() {
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
		pid := testutil.FreezeQEMU(t, e.stateDir(c.ID))
		testutil.ReturnsWithin(t, 45*time.Second, "forced Remove of a frozen container", func() {
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
