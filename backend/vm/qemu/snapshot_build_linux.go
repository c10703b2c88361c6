package qemu

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
)

// Building a boot snapshot: a template VM of the shape boots, its agent initialises the guest and
// waits, and its devices (a migration stream) and RAM are saved into the cache.

// buildSnapshot boots spec's shape as a template and saves it into tmp
// (snapcache.Build: the cache writes meta.json and moves tmp into place);
// it returns the template's kernel command line.
func (h *qemuHypervisor) buildSnapshot(ctx context.Context, spec vm.MachineSpec, accel, key, tmp string) (cmdline string, err error) {
	t := spec
	t.ID = "snapshot-" + key
	t.Shares, t.Disks, t.Network.MAC = nil, nil, "" // a template has no container's shares or disks
	t.StateDir = filepath.Join(tmp, "run")
	t.ConsoleLog = filepath.Join(tmp, "console.log")
	t.Boot = agentproto.Boot{Template: true}
	t.Network.Fabric, t.Network.Member = nil, "" // the template joins no container network
	console := "ttyS0"
	if t.Arch == "arm64" {
		console = "ttyAMA0"
	}
	cmdline = kernelCmdline(t, console, false, h.delayArgs(t, accel))
	ram, err := newRAM(t.MemoryMiB)
	if err != nil {
		return "", err
	}
	defer ram.Close()
	m, ac, err := h.launch(ctx, t, accel, layout{cmdline: cmdline, snapshot: true}, ram)
	if err != nil {
		return "", err
	}
	running := true
	defer func() {
		if running {
			m.abort(ac)
		}
	}()
	// The template announces itself on the agent channel once it waits.
	bctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	dl, _ := bctx.Deadline()
	ac.SetReadDeadline(dl)
	got := make(chan error, 1)
	go func() {
		line, err := readLine(ac, 4096)
		if err == nil && line != agentproto.TemplateReady {
			err = fmt.Errorf("unexpected %q", line)
		}
		got <- err
	}()
	select {
	case err = <-got:
	case werr := <-m.exited:
		m.exited <- werr
		err = fmt.Errorf("qemu exited (%v)", werr)
	case <-bctx.Done():
		err = bctx.Err()
	}
	if err != nil {
		return "", fmt.Errorf("template VM: waiting for its agent: %w; console log ends:\n%s", err, vm.ConsoleTail(t.ConsoleLog, 10))
	}
	settleTemplate(bctx, ram)
	state, err := os.Create(filepath.Join(tmp, "state"))
	if err != nil {
		return "", err
	}
	defer state.Close()
	if _, err = m.qmp.do(bctx, "stop", nil); err != nil {
		return "", err
	}
	if err = m.ignoreSharedRAM(bctx); err != nil {
		return "", err
	}
	if _, err = m.qmp.doFile(bctx, "getfd", map[string]any{"fdname": "snapshot"}, state); err != nil {
		return "", err
	}
	if _, err = m.qmp.do(bctx, "migrate", map[string]any{"uri": "fd:snapshot"}); err != nil {
		return "", err
	}
	if err = m.waitMigrated(bctx); err != nil {
		return "", err
	}
	m.abort(ac) // saved: the template has done its work
	running = false
	if err = saveRAM(ram, filepath.Join(tmp, "ram")); err != nil {
		return "", err
	}
	os.RemoveAll(t.StateDir)
	return cmdline, nil
}

// ignoreSharedRAM leaves the guest RAM (a file the snapshot keeps) out of
// the migration stream, which then carries only the device state.
func (m *qemuMachine) ignoreSharedRAM(ctx context.Context) error {
	_, err := m.qmp.do(ctx, "migrate-set-capabilities", map[string]any{"capabilities": []map[string]any{
		{"capability": "x-ignore-shared", "state": true}}})
	return err
}

// waitMigrated waits for an outgoing migration to complete.
func (m *qemuMachine) waitMigrated(ctx context.Context) error {
	for {
		raw, err := m.qmp.do(ctx, "query-migrate", nil)
		if err != nil {
			return err
		}
		var st struct {
			Status    string `json:"status"`
			ErrorDesc string `json:"error-desc"`
		}
		_ = json.Unmarshal(raw, &st)
		switch st.Status {
		case "completed":
			return nil
		case "failed", "cancelled":
			return fmt.Errorf("saving the device state: %s %s", st.Status, st.ErrorDesc)
		}
		select {
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
