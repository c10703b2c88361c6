//go:build linux

package engine

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/vm"
)

// recordingHV is a real hypervisor whose machines record how the engine used them.
type recordingHV struct {
	vm.Hypervisor
	mu       sync.Mutex // guards machines
	machines map[string]*recordingMachine
}

func (h *recordingHV) Prepare(ctx context.Context, spec vm.MachineSpec) error {
	return h.Hypervisor.(vm.Preparer).Prepare(ctx, spec)
}

func (h *recordingHV) Start(ctx context.Context, spec vm.MachineSpec) (vm.Machine, error) {
	m, err := h.Hypervisor.Start(ctx, spec)
	if err != nil {
		return nil, err
	}
	r := &recordingMachine{Machine: m}
	h.mu.Lock()
	h.machines[spec.ID] = r
	h.mu.Unlock()
	return r, nil
}

func (h *recordingHV) machine(id string) *recordingMachine {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.machines[id]
}

type recordingMachine struct {
	vm.Machine
	mu    sync.Mutex // guards dials, stops
	dials int
	stops []bool // each Stop's force
}

func (m *recordingMachine) Dial(ctx context.Context) (net.Conn, error) {
	m.mu.Lock()
	m.dials++
	m.mu.Unlock()
	return m.Machine.Dial(ctx)
}

func (m *recordingMachine) Stop(ctx context.Context, force bool) error {
	m.mu.Lock()
	m.stops = append(m.stops, force)
	m.mu.Unlock()
	return m.Machine.Stop(ctx, force)
}

func (m *recordingMachine) record() (dials int, stops []bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dials, append([]bool(nil), m.stops...)
}

// TestRestoredRunPath runs short containers restored from the warm-up's boot snapshot, as `run
// --rm busybox true` does, and checks what their start and end cost the guest and the host.
func TestRestoredRunPath(t *testing.T) {
	cfg, host, snapshots := qemuConfig(t)
	cfg.GuestDebug = true
	hv := &recordingHV{Hypervisor: cfg.Hypervisor, machines: map[string]*recordingMachine{}}
	cfg.Hypervisor = hv
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
	// Kept, its VM stops the orderly way: the agent syncs and quiesces the upper disk first.
	select {
	case <-hv.machine(kept.ID).Done():
	case <-ctx.Done():
		t.Fatal("the kept container's VM did not end after its workload exited")
	}
	if _, stops := hv.machine(kept.ID).record(); len(stops) == 0 || stops[0] {
		t.Errorf("the kept container's VM was stopped with force %v; want the agent's shutdown, then the orderly stop", stops)
	}

	// With AutoRemove, the VM of a workload that exited is ended at once: its upper disk is about
	// to be deleted, so the agent's sync and quiesce would only delay the removal.
	rm, err := e.Create(ctx, CreateOptions{Image: host + "/busybox:latest", Cmd: []string{"true"}, AutoRemove: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx, rm.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "the AutoRemove container to be removed", func() bool {
		_, err := e.Inspect(ctx, rm.ID)
		return errors.Is(err, ErrNotFound)
	})
	dials, stops := hv.machine(rm.ID).record()
	if len(stops) != 1 || !stops[0] {
		t.Errorf("the AutoRemove container's VM was stopped with force %v; want one forced stop, without the agent's shutdown", stops)
	}
	// Each request is a round trip through a guest that has just resumed: the start makes two, the
	// clock (whose hello says the agent is up) and the workload's Run.
	if dials != 2 {
		t.Errorf("the start of a container without mounts dialed the agent %d times; want 2 (SetTime, Run)", dials)
	}
}
