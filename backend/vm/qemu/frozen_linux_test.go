package qemu_test

import (
	"context"
	"errors"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/internal/testutil"
)

// TestAgentVMFrozen: a guest that stops answering (its qemu process stopped
// by SIGSTOP) wedges nothing on the host. Each agent request with a short
// context ends with the context's error, also past the 256 unacknowledged
// streams a yamux session allows at once (where OpenStream itself blocks),
// Dial then returns the context's error, and a graceful Shutdown with a deadline
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
	pid := testutil.FreezeQEMU(t, spec.StateDir)

	const bound = 50 * time.Millisecond
	for i := 0; i < 260; i++ {
		testutil.ReturnsWithin(t, bound+5*time.Second, "agent stats request "+strconv.Itoa(i)+" to a frozen guest", func() {
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
	testutil.ReturnsWithin(t, bound+5*time.Second, "Dial to a frozen guest", func() {
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

	// The graceful Shutdown asks the agent to shut down (a Dial and a
	// request that nobody answers) until its deadline, then kills qemu.
	testutil.ReturnsWithin(t, 30*time.Second, "graceful Shutdown of a frozen machine", func() {
		sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
		defer scancel()
		if err := vm.Shutdown(sctx, m, nil); err != nil {
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
