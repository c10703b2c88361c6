package vm_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/backend/vm/vmtest"
)

// recorder is a vm.Machine that notes the hypervisor calls Shutdown makes.
type recorder struct {
	vm.Machine
	mu    sync.Mutex
	calls []string
}

func (r *recorder) note(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, s)
}

func (r *recorder) Resume(ctx context.Context) error {
	r.note("resume")
	return r.Machine.Resume(ctx)
}

func (r *recorder) Stop(ctx context.Context, force bool) error {
	if force {
		r.note("stop force")
	} else {
		r.note("stop")
	}
	return r.Machine.Stop(ctx, force)
}

// Shutdown resumes a paused machine and asks its agent, which powers the
// machine off (a hypervisor Stop may follow, never a forced one). An ended
// machine is left alone.
func TestShutdownAsksTheAgent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := vmtest.New().Start(ctx, vm.MachineSpec{ID: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	r := &recorder{Machine: m}
	if err := vm.Shutdown(ctx, r, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.Done():
	default:
		t.Fatalf("Shutdown returned with the machine %s", m.State())
	}
	if ops := m.(*vmtest.Machine).Ops(); len(ops) != 1 || ops[0] != agentproto.OpShutdown {
		t.Errorf("the agent was asked %q, want one shutdown", ops)
	}
	calls := r.calls
	if len(calls) == 0 || calls[0] != "resume" || len(calls) > 2 || (len(calls) == 2 && calls[1] != "stop") {
		t.Errorf("hypervisor calls %q, want a resume, then at most a stop without force", calls)
	}
	if err := vm.Shutdown(ctx, r, nil); err != nil || len(r.calls) != len(calls) {
		t.Errorf("Shutdown of an ended machine: %v, calls %q", err, r.calls)
	}
}

// When ctx has ended, Shutdown does not wait for the agent: it kills.
func TestShutdownPastDeadlineKills(t *testing.T) {
	m, err := vmtest.New().Start(context.Background(), vm.MachineSpec{ID: "s2"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := &recorder{Machine: m}
	if err := vm.Shutdown(ctx, r, nil); err != nil {
		t.Fatal(err)
	}
	if got := r.calls; len(got) != 1 || got[0] != "stop force" {
		t.Errorf("hypervisor calls %q, want one forced stop", got)
	}
	if ops := m.(*vmtest.Machine).Ops(); len(ops) != 0 {
		t.Errorf("the agent was asked %q past the deadline", ops)
	}
	select {
	case <-m.Done():
	default:
		t.Fatalf("Shutdown returned with the machine %s", m.State())
	}
}
