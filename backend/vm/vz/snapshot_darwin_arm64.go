//go:build darwin && arm64

package vz

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/Code-Hex/vz/v3"
	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
)

// Boot snapshots on Apple silicon (snapshot.go says what they are). A
// snapshot's directory holds, beside meta.json: state.vzvmsave (the
// framework's saved VM, its RAM included, encrypted with a key of this
// Mac's), machine-id (the template's generic machine identifier, which a
// restored VM must have) and console.log (the template's boot).

const (
	stateFile     = "state.vzvmsave"
	machineIDFile = "machine-id"
)

// startFast starts spec from its configuration's snapshot when this Mac can
// (macOS 14 or later) and the configuration has started before, else cold.
// A snapshot that cannot be built or restored is dropped and its
// configuration boots cold for snapcache.Retry.
func (h *vzHypervisor) startFast(ctx context.Context, spec vm.MachineSpec) (*vzMachine, error) {
	if !spec.SkiffAgent || h.snap.unsupported != nil {
		return h.boot(ctx, spec)
	}
	key, err := snapshotKey(spec, h.snap.osBuild)
	if err != nil {
		h.log.Debug("no boot snapshot key; booting cold", zap.String("vm", spec.ID), zap.Error(err))
		return h.boot(ctx, spec)
	}
	if spec.Network.Mode != vm.NetworkNone && spec.Network.MAC == "" {
		spec.Network.MAC = templateMAC(key) // the template's and every restored VM's
	}
	_, err = os.Stat(filepath.Join(h.snap.snaps.Root(), key, "meta.json"))
	if again := h.snap.seen.add(key); h.snap.snaps.Failed(key) || (!again && err != nil) {
		return h.boot(ctx, spec) // failed lately, or the first start of a configuration without a snapshot
	}
	m, err := h.startRestored(ctx, spec, key)
	if err == nil || ctx.Err() != nil {
		return m, err
	}
	h.log.Warn("boot snapshot unusable; booting cold", zap.String("vm", spec.ID), zap.Error(err))
	h.snap.snaps.Fail(key)
	return h.boot(ctx, spec)
}

// startRestored starts spec from snapshot key, building it first when
// there is none: a VM of the template's configuration restored from its
// saved state, resumed, and handed its own keys by the agent's restore
// handshake.
func (h *vzHypervisor) startRestored(ctx context.Context, spec vm.MachineSpec, key string) (*vzMachine, error) {
	snap, err := h.snap.snaps.Get(ctx, key, func(ctx context.Context, tmp string) (string, error) {
		return h.buildSnapshot(ctx, spec, key, tmp)
	})
	if err != nil {
		return nil, err
	}
	defer snap.Release()
	id, err := os.ReadFile(filepath.Join(snap.Dir, machineIDFile))
	if err != nil {
		return nil, fmt.Errorf("boot snapshot %s: %w", key, err)
	}
	// The console log starts with the template's boot, as a cold boot's would.
	console, _ := os.ReadFile(filepath.Join(snap.Dir, "console.log"))
	console = append(console, "skiff: restored from boot snapshot "+key+"\n"...)
	m, err := h.create(spec, vzBoot{cmdline: snap.Meta.Cmdline, machineID: id, saveable: true}, console)
	if err != nil {
		return nil, err
	}
	state := filepath.Join(snap.Dir, stateFile)
	// The framework restores into a stopped VM and leaves it paused.
	if err := m.run(ctx, "restoring", func() error {
		if err := m.vm.RestoreMachineStateFromURL(state); err != nil {
			return err
		}
		return m.vm.Resume()
	}); err != nil {
		return nil, fmt.Errorf("boot snapshot %s: %w", key, err)
	}
	if err := m.restoreHandshake(ctx); err != nil {
		sctx, cancel := context.WithTimeout(context.Background(), hardStopWait)
		defer cancel()
		_ = m.Stop(sctx, true)
		return nil, fmt.Errorf("starting %q from boot snapshot %s: %w", spec.ID, key, err)
	}
	h.log.Debug("vz machine restored", zap.String("vm", spec.ID), zap.String("snapshot", key))
	return m, nil
}

// restoreHandshake hands the restored agent its VM's own keys (clock,
// entropy, hostname, root, …) on a connection of its own; the agent
// answers and serves its streams from then on (docs/contracts.md, "Boot
// snapshots").
func (m *vzMachine) restoreHandshake(ctx context.Context) error {
	hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := m.Dial(hctx)
	if err != nil {
		return err
	}
	defer c.Close()
	dl, _ := hctx.Deadline()
	_ = c.SetDeadline(dl)
	if line, err := readLine(c); err != nil || line != agentproto.TemplateReady {
		return fmt.Errorf("agent channel: expected the template's line, got %q (%v)", line, err)
	}
	// The clock is taken now, after the restore.
	if _, err := io.WriteString(c, restoreLine(m.spec, time.Now())+"\n"); err != nil {
		return fmt.Errorf("agent channel: %w", err)
	}
	ans, err := readLine(c)
	if err != nil {
		return fmt.Errorf("agent channel: waiting for the agent's answer: %w", err)
	}
	if ans != agentproto.RestoredAck {
		return fmt.Errorf("the agent refused the restore: %s", ans)
	}
	return nil
}

// buildSnapshot boots spec's configuration as a template and saves it into
// tmp (snapcache.Build): the agent initialises the guest up to the
// container's own parts and says so on a connection; the host hangs up,
// pauses the VM and saves it. It returns the template's command line.
func (h *vzHypervisor) buildSnapshot(ctx context.Context, spec vm.MachineSpec, key, tmp string) (string, error) {
	t := templateSpec(spec, key, tmp)
	ident, err := vz.NewGenericMachineIdentifier()
	if err != nil {
		return "", fmt.Errorf("machine identifier: %w", err)
	}
	id := ident.DataRepresentation()
	if err := os.WriteFile(filepath.Join(tmp, machineIDFile), id, 0o600); err != nil {
		return "", err
	}
	cmdline := vzCmdline(t, time.Now())
	m, err := h.create(t, vzBoot{cmdline: cmdline, machineID: id, saveable: true}, nil)
	if err != nil {
		return "", err
	}
	// A configuration the framework cannot save (a device it cannot) is
	// not worth a template's boot.
	if ok, err := m.cfg.ValidateSaveRestoreSupport(); !ok || err != nil {
		m.release()
		if err == nil {
			err = errors.New("rejected without a reason")
		}
		return "", fmt.Errorf("the framework cannot save this configuration: %w", err)
	}
	if err := m.run(ctx, "starting the template", func() error { return m.vm.Start() }); err != nil {
		return "", err
	}
	defer func() { // saved or not, the template has done its work
		sctx, cancel := context.WithTimeout(context.Background(), hardStopWait)
		defer cancel()
		_ = m.Stop(sctx, true)
	}()
	bctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	c, err := m.Dial(bctx)
	if err != nil {
		return "", fmt.Errorf("template VM: %w; console log ends:\n%s", err, vm.ConsoleTail(t.ConsoleLog, 10))
	}
	dl, _ := bctx.Deadline()
	_ = c.SetDeadline(dl)
	line, err := readLine(c)
	c.Close()
	if err != nil || line != agentproto.TemplateReady {
		return "", fmt.Errorf("template VM: expected %q, got %q (%v); console log ends:\n%s", agentproto.TemplateReady, line, err, vm.ConsoleTail(t.ConsoleLog, 10))
	}
	// Let the guest see the hang-up, so that the snapshot holds no open
	// connection (one it did would only be dropped in each restored VM).
	time.Sleep(100 * time.Millisecond)
	if err := m.Pause(bctx); err != nil {
		return "", err
	}
	if err := m.call(bctx, "saving", func() error { return m.vm.SaveMachineStateToPath(filepath.Join(tmp, stateFile)) }); err != nil {
		return "", err
	}
	os.RemoveAll(t.StateDir)
	return cmdline, nil
}
