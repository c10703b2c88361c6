package vm_test

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

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/internal/testutil"
)

// freeze SIGSTOPs the machine's qemu process, so its guest stops answering
// (the agent acknowledges no stream) while the host side stays connected.
// The process is continued at cleanup, should it still exist.
func freeze(t testing.TB, stateDir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(stateDir, "qemu.pid"))
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

// within runs f and fails the test when it has not returned after d.
func within(t testing.TB, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}

// TestAgentVMFrozen: a guest that stops answering (its qemu process stopped
// by SIGSTOP) wedges nothing on the host. Each agent request with a short
// context ends with the context's error, also past the 256 unacknowledged
// streams a yamux session allows at once (where OpenStream itself blocks),
// Dial then returns the context's error, and a graceful Stop with a deadline
// kills the machine when the agent does not answer.
func TestAgentVMFrozen(t *testing.T) {
	e := newEnv(t, "amd64")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	spec := e.spec(t, "frozen", vm.Share{Tag: vm.RootShareTag, HostPath: testutil.BusyboxRootfs(t)})
	m, c := e.start(t, ctx, spec)
	if _, err := c.Hello(ctx); err != nil {
		t.Fatal(err)
	}
	pid := freeze(t, spec.StateDir)

	const bound = 50 * time.Millisecond
	for i := 0; i < 260; i++ {
		within(t, bound+5*time.Second, "agent stats request "+strconv.Itoa(i)+" to a frozen guest", func() {
			sctx, scancel := context.WithTimeout(ctx, bound)
			defer scancel()
			if _, err := c.Stats(sctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("stats %d from a frozen guest: %v, want the context's deadline", i, err)
			}
		})
		if t.Failed() {
			return
		}
	}
	within(t, bound+5*time.Second, "Dial to a frozen guest", func() {
		dctx, dcancel := context.WithTimeout(ctx, bound)
		defer dcancel()
		start := time.Now()
		conn, err := m.Dial(dctx)
		if err == nil {
			conn.Close()
			t.Errorf("Dial with 256 streams unacknowledged opened another")
		} else if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Dial: %v, want the context's deadline", err)
		}
		t.Logf("Dial returned after %v: %v", time.Since(start), err)
	})

	// The graceful stop asks the agent to shut down (a Dial and a request
	// that nobody answers), then quits qemu through QMP (also frozen), then
	// kills it.
	within(t, 30*time.Second, "graceful Stop of a frozen machine", func() {
		sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
		defer scancel()
		if err := m.Stop(sctx, false); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	select {
	case <-m.Done():
	default:
		t.Fatalf("Stop returned but the machine has not ended (state %s)", m.State())
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("qemu (pid %d) still exists after Stop: %v", pid, err)
	}
	if _, err := agentproto.NewClient(m.Dial).Hello(ctx); !errors.Is(err, vm.ErrNotRunning) {
		t.Errorf("hello after stop: %v, want ErrNotRunning", err)
	}
	noLeftovers(t, spec.StateDir)
}
