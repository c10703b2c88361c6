package qemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
)

// Restoring a VM from its shape's boot snapshot: its RAM from the saved file (or shared
// copy-on-write), its devices loaded through QMP, its shares hot-plugged, its own keys sent to
// the agent.

// startRestored starts spec from its shape's snapshot, building the
// snapshot first when there is none: from the shape's spare when one is
// ready (spare_linux.go), else from a qemu launched now. Either way it then
// has the shape's next spare launched.
func (h *qemuHypervisor) startRestored(ctx context.Context, spec vm.MachineSpec, accel string) (m *qemuMachine, err error) {
	lap := newLaps()
	snap, err := h.snapshotFor(ctx, spec, accel)
	if err != nil {
		return nil, err
	}
	defer snap.Release()
	// The console log starts with the template's boot, as a cold boot's
	// would, once the restore is sure to run.
	console, _ := os.ReadFile(filepath.Join(snap.Dir, "console.log"))
	console = append(console, "skiff: restored from boot snapshot "+snap.Meta.Key+"\n"...)
	if sp := h.spares.take(h, spec, snap); sp != nil {
		lap.mark("snapshot")
		m, err := h.adopt(ctx, sp, spec, console, lap)
		if err == nil {
			m.log.Debug("restored from boot snapshot", append(lap.fields(), zap.Bool("spare", true))...)
			h.refillSpare(m, spec, accel, snap)
			return m, nil
		}
		// A disk that does not attach is the spec's fault, unless the spare's qemu died.
		if ctx.Err() != nil || errors.Is(err, errDiskAttach) && !errors.Is(err, errQMPClosed) {
			return nil, err
		}
		h.log.Info("spare VM unusable; restoring a new one", zap.String("vm", spec.ID), zap.Error(err))
		lap = newLaps()
	}
	ram, cow, err := h.restoredRAM(snap, spec)
	if err != nil {
		return nil, fmt.Errorf("boot snapshot %s: %w", snap.Meta.Key, err)
	}
	defer ram.Close()
	defer func() { h.cowEnd(m, cow) }()
	state, err := os.Open(filepath.Join(snap.Dir, "state"))
	if err != nil {
		return nil, fmt.Errorf("boot snapshot %s: %w", snap.Meta.Key, err)
	}
	defer state.Close()
	lap.mark("snapshot")
	m, ac, err := h.launch(ctx, spec, accel, layout{cmdline: snap.Meta.Cmdline, snapshot: true, incoming: true, cow: cow != nil}, ram, state)
	if err != nil {
		return nil, err
	}
	lap.mark("launch")
	m.cow = cow
	if err := m.restore(ctx, ac, console, lap); err != nil {
		m.abort(ac)
		return nil, fmt.Errorf("starting %q from boot snapshot %s: %w", spec.ID, snap.Meta.Key, err)
	}
	m.hotplug, m.plugged = true, len(spec.Shares)+len(spec.Disks)
	if err := m.serve(ac); err != nil {
		m.abort(ac)
		return nil, fmt.Errorf("starting %q: %w", spec.ID, err)
	}
	m.log.Debug("restored from boot snapshot", lap.fields()...)
	h.refillSpare(m, spec, accel, snap)
	return m, nil
}

// restore waits for the device state to load, hot-plugs the shares and
// disks, adds console to the console log, runs the guest and hands the
// agent its keys.
func (m *qemuMachine) restore(ctx context.Context, ac net.Conn, console []byte, lap *laps) error {
	if err := m.load(ctx); err != nil {
		return err
	}
	lap.mark("state")
	return m.resume(ctx, ac, console, lap)
}

// load has qemu (launched incoming) read the device state and waits until
// it has, leaving the guest paused.
func (m *qemuMachine) load(ctx context.Context) error {
	if err := m.ignoreSharedRAM(ctx); err != nil {
		return err
	}
	stateFD := fdShares0 + len(m.spec.Shares) + 1 // after the RAM's
	if _, err := m.qmp.do(ctx, "migrate-incoming", map[string]any{"uri": "fd:" + strconv.Itoa(stateFD)}); err != nil {
		return fmt.Errorf("loading the device state: %w", err)
	}
	for {
		qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		st, err := m.qmp.status(qctx)
		cancel()
		if err != nil {
			return fmt.Errorf("loading the device state: %w: %s", err, m.qemuLog())
		}
		if st != "inmigrate" {
			if st != "paused" {
				return fmt.Errorf("loading the device state: qemu is %s", st)
			}
			return nil
		}
		select {
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// resume hot-plugs the shares and disks of a loaded machine, adds console
// to its console log, runs the guest and hands the agent its keys.
func (m *qemuMachine) resume(ctx context.Context, ac net.Conn, console []byte, lap *laps) error {
	for i, sh := range m.spec.Shares {
		id := "fs" + strconv.Itoa(i)
		if _, err := m.qmp.do(ctx, "device_add", map[string]any{"driver": "vhost-user-fs-pci",
			"id": id, "chardev": id, "tag": sh.Tag, "bus": hotplugPort(i)}); err != nil {
			return fmt.Errorf("share %q: %w", sh.Tag, err)
		}
	}
	if err := m.plugDisks(ctx); err != nil {
		return err
	}
	if err := m.plugRing(ctx); err != nil {
		return err
	}
	lap.mark("hotplug")
	_, _ = m.console.Write(console)
	if _, err := m.qmp.do(ctx, "cont", nil); err != nil {
		return err
	}
	lap.mark("cont")
	if dl, ok := ctx.Deadline(); ok {
		ac.SetDeadline(dl)
	} else {
		ac.SetDeadline(time.Now().Add(time.Minute))
	}
	defer ac.SetDeadline(time.Time{})
	// The line carries the host's clock: taken now, not before the device
	// state loaded (seconds, under TCG on a busy host; a spare's, minutes before).
	if _, err := io.WriteString(ac, restoreLine(m.spec, m.ring != nil, m.cow != nil)+"\n"); err != nil {
		return fmt.Errorf("agent channel: %w", err)
	}
	ans, err := readLine(ac, 4096)
	if err != nil {
		return fmt.Errorf("agent channel: waiting for the agent's answer: %w", err)
	}
	if ans != agentproto.RestoredAck {
		return fmt.Errorf("the agent refused the restore: %s", ans)
	}
	lap.mark("agent")
	return nil
}

// plugRing hot-plugs the agent channel's ring device, once (a spare has
// it plugged before it is adopted).
func (m *qemuMachine) plugRing(ctx context.Context) error {
	if m.ring == nil || m.ringPlugged {
		return nil
	}
	if _, err := m.qmp.do(ctx, "device_add", map[string]any{"driver": "ivshmem-plain",
		"id": "ring0", "memdev": "ring", "bus": ringPort}); err != nil {
		return fmt.Errorf("the agent channel's ring: %w", err)
	}
	m.ringPlugged = true
	return nil
}

// restoreLine is a restored VM's own keys: spec.Boot with the clock,
// fresh entropy, whether its channel moves to the ring (the template
// booted without) and whether its RAM is copy-on-write (no page reporting),
// read by the agent over its template's (agentproto.ParseBootOnto).
func restoreLine(spec vm.MachineSpec, ring, cow bool) string {
	b := vm.GuestBoot(spec, agentproto.NetConfig{}, time.Now())
	b.Ring, b.NoPageReporting = ring, cow
	return strings.Join(b.Args(), " ")
}
