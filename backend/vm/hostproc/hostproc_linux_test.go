package hostproc_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/backend/vm/agentbin"
	"github.com/skiff-containers/skiff/backend/vm/hostproc"
	"github.com/skiff-containers/skiff/backend/vm/internal/proc"
	"github.com/skiff-containers/skiff/internal/testutil"
)

func newHV(t *testing.T) vm.Hypervisor {
	t.Helper()
	if _, err := agentbin.Agent(vm.HostArch()); err != nil {
		t.Skipf("%v (`make setup` runs it)", err)
	}
	if os.Getuid() != 0 {
		t.Skip("the agent's host mode needs root")
	}
	hv, err := hostproc.New(hostproc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return hv
}

func start(t *testing.T, hv vm.Hypervisor, id string) (vm.Machine, *agentproto.Client, string) {
	t.Helper()
	state := t.TempDir()
	m, err := hv.Start(context.Background(), vm.MachineSpec{ID: id, StateDir: state,
		Shares: []vm.Share{{Tag: vm.RootShareTag, HostPath: testutil.BusyboxRootfs(t)}, {Tag: "data", HostPath: t.TempDir()}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Stop(context.Background(), true) })
	return m, agentproto.NewClient(m.Dial), state
}

func output(t *testing.T, p *agentproto.Process) (string, int) {
	t.Helper()
	out, _ := io.ReadAll(p.Stdout())
	io.ReadAll(p.Stderr())
	st, err := p.Wait()
	if err != nil {
		t.Fatal(err)
	}
	return string(out), st.Code
}

// noProcesses checks the agent and everything it started are gone.
func noProcesses(t *testing.T, state string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := proc.Descendants(os.Getpid())
		var agents []int
		for _, p := range left {
			if b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p), "cmdline")); strings.Contains(string(b), state) || strings.Contains(string(b), "skiff-agent") {
				agents = append(agents, p)
			}
		}
		pids, _ := filepath.Glob(filepath.Join(state, "*.pid"))
		if len(agents)+len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("left behind: processes %v, pid files %v", agents, pids)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestHostproc(t *testing.T) {
	hv := newHV(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m, c, state := start(t, hv, "hp1")
	info, err := c.Hello(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Arch != vm.HostArch() || m.State() != vm.StateRunning || hv.Name() != "hostproc" {
		t.Fatalf("info %+v state %s", info, m.State())
	}
	w, err := c.Run(ctx, agentproto.ProcessSpec{Args: []string{"sh", "-c", "echo started; exec sleep 1000"}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	p, err := c.Exec(ctx, agentproto.ProcessSpec{Args: []string{"echo", "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	if out, code := output(t, p); out != "hi\n" || code != 0 {
		t.Fatalf("exec echo: %q %d", out, code)
	}

	if err := m.Pause(ctx); err != nil || m.State() != vm.StatePaused {
		t.Fatalf("pause: %v, state %s", err, m.State())
	}
	short, c2 := context.WithTimeout(ctx, 500*time.Millisecond)
	_, err = c.Hello(short)
	c2()
	if err == nil {
		t.Fatal("a paused agent answered")
	}
	if err := m.Resume(ctx); err != nil || m.State() != vm.StateRunning {
		t.Fatalf("resume: %v, state %s", err, m.State())
	}
	if _, err := c.Hello(ctx); err != nil {
		t.Fatalf("hello after resume: %v", err)
	}

	t0 := time.Now()
	sctx, c3 := context.WithTimeout(ctx, 20*time.Second)
	defer c3()
	if err := vm.Shutdown(sctx, m, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("graceful stop: %v", time.Since(t0))
	if m.State() != vm.StateStopped || m.Err() != nil {
		t.Fatalf("after stop: %s %v", m.State(), m.Err())
	}
	if _, err := m.Dial(ctx); !errors.Is(err, vm.ErrNotRunning) {
		t.Fatalf("dial after stop: %v", err)
	}
	noProcesses(t, state)

	// Forced stop kills the agent and its workload at once.
	m2, c2x, state2 := start(t, hv, "hp2")
	w2, err := c2x.Run(ctx, agentproto.ProcessSpec{Args: []string{"sh", "-c", "trap '' TERM; while :; do sleep 1; done"}})
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	t0 = time.Now()
	if err := m2.Stop(ctx, true); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > 5*time.Second || m2.State() != vm.StateStopped {
		t.Fatalf("forced stop took %v, state %s", d, m2.State())
	}
	noProcesses(t, state2)
}
