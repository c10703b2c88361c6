package qemu

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/backend/vm/snapcache"
)

// Spare VMs. Of a restored start, launching qemu (~0.16 s under TCG here)
// and loading the device state (~0.04 s) are the same for every VM of a
// shape, so once a VM of a shape has been restored (or its snapshot
// prepared), the next one is launched ahead: qemu started incoming with
// the snapshot's RAM mapped copy-on-write and its device state loaded,
// left paused (never run: no CPU, an empty TCG buffer, only QEMU's own
// memory and the pages the load touched). The next start of that shape
// adopts it (attach): its state dir, console log, pid file, qemu.log and
// network become the VM's, then its disks are hot-plugged (its ring
// device was, ahead), the guest runs and gets its restore line, as a restore launched now would.
//
// Nothing of a container is fixed at launch: the argv of a restored VM
// without shares holds only the shape (its -name is the spare's). A VM
// with shares (whose RAM must be its own, not copy-on-write) is restored
// as before. At most one spare per shape and maxSpares in all; one is
// ended when unused for spareIdle, when its snapshot fails or is replaced,
// and when the hypervisor closes. One that failed to launch or load, or
// whose qemu died, is dropped and the start restores as before.

const (
	maxSpares = 2
	spareIdle = 5 * time.Minute
	// spareWait bounds how long a spare's launch waits for the VM whose
	// start asked for it to reach its agent, so as not to compete with it.
	spareWait = 30 * time.Second
)

// spare is a paused, loaded VM of one snapshot waiting for a start.
type spare struct {
	key  string // the shape's snapshot key
	snap string // the snapshot's identity (snapID)
	m    *qemuMachine
	ac   net.Conn
	cow  *cowRAM
	idle *time.Timer
	born time.Time
}

// sparePool holds the ready spares and the launches in progress.
type sparePool struct {
	ctx    context.Context // ended by Close: ends launches in progress
	cancel context.CancelFunc
	off    bool
	max    int
	idleTO time.Duration

	mu     sync.Mutex // guards ready, busy and closed
	ready  map[string]*spare
	busy   map[string]bool // keys whose spare is being launched
	closed bool
	wg     sync.WaitGroup // the launches
}

func newSparePool(off bool) sparePool {
	ctx, cancel := context.WithCancel(context.Background())
	return sparePool{ctx: ctx, cancel: cancel, off: off, max: maxSpares, idleTO: spareIdle,
		ready: map[string]*spare{}, busy: map[string]bool{}}
}

// snapID tells one build of a snapshot from another of the same key.
func snapID(snap *snapcache.Snapshot) string { return snap.Dir + " " + snap.Meta.Created.String() }

// spareShape is spec with nothing of its container: what a spare is launched with.
func spareShape(spec vm.MachineSpec, key string) vm.MachineSpec {
	s := spec
	s.ID = "spare-" + key
	s.Shares, s.Disks, s.Boot = nil, nil, agentproto.Boot{}
	s.StateDir, s.ConsoleLog = "", ""
	s.Network = vm.Network{Mode: spec.Network.Mode}
	return s
}

// take removes and returns the spare spec can adopt from snap: nil when
// there is none, or when it is of another build of the snapshot or its
// qemu died (it is ended).
func (p *sparePool) take(h *qemuHypervisor, spec vm.MachineSpec, snap *snapcache.Snapshot) *spare {
	if p.off || !cowOK(spec) {
		return nil
	}
	p.mu.Lock()
	sp := p.ready[snap.Meta.Key]
	if sp != nil {
		delete(p.ready, sp.key)
		sp.idle.Stop()
	}
	p.mu.Unlock()
	if sp == nil {
		return nil
	}
	// A spare whose qemu died, or stopped answering, is no use.
	qctx, cancel := context.WithTimeout(context.Background(), time.Second)
	st, err := sp.m.qmp.status(qctx)
	cancel()
	dead := err != nil || st != "paused"
	if dead || sp.snap != snapID(snap) {
		h.log.Info("spare VM skipped", zap.String("vm", spec.ID), zap.Bool("qemu_exited", dead), zap.Bool("snapshot_replaced", !dead))
		h.endSpare(sp)
		return nil
	}
	return sp
}

// adopt makes sp spec's machine: attach, then resume and serve.
func (h *qemuHypervisor) adopt(ctx context.Context, sp *spare, spec vm.MachineSpec, console []byte, lap *laps) (*qemuMachine, error) {
	m := sp.m
	if err := m.attach(spec); err != nil {
		h.endSpare(sp)
		return nil, fmt.Errorf("starting %q from a spare VM: %w", spec.ID, err)
	}
	lap.mark("attach")
	if err := m.resume(ctx, sp.ac, console, lap); err != nil {
		h.endSpare(sp)
		return nil, fmt.Errorf("starting %q from a spare VM: %w", spec.ID, err)
	}
	m.hotplug, m.plugged = true, len(spec.Disks)
	if err := m.serve(sp.ac); err != nil { // serve never fails today
		h.endSpare(sp)
		return nil, fmt.Errorf("starting %q: %w", spec.ID, err)
	}
	h.cowEnd(m, sp.cow) // released once m has ended
	return m, nil
}

// endSpare ends a spare that was not adopted, or failed to be.
func (h *qemuHypervisor) endSpare(sp *spare) {
	sp.m.abort(sp.ac)
	h.cow.release(sp.cow)
}

// refillSpare has the next spare of spec's shape launched, in the
// background once after (nil: none) has reached its agent or ended, unless
// spares are off, spec's VMs cannot use one (shares: no copy-on-write RAM),
// or the shape has one ready or coming.
func (h *qemuHypervisor) refillSpare(after *qemuMachine, spec vm.MachineSpec, accel string, snap *snapcache.Snapshot) {
	p := &h.spares
	key := snap.Meta.Key
	if p.off || !cowOK(spec) {
		return
	}
	p.mu.Lock()
	if p.closed || p.ready[key] != nil || p.busy[key] {
		p.mu.Unlock()
		return
	}
	p.busy[key] = true
	p.wg.Add(1)
	p.mu.Unlock()
	done := func() {
		p.mu.Lock()
		delete(p.busy, key)
		p.mu.Unlock()
		p.wg.Done()
	}
	shape := spareShape(spec, key)
	// The snapshot's files are opened now, while the caller holds it.
	ram, cow, err := h.restoredRAM(snap, shape)
	if err != nil {
		done()
		return
	}
	state, err := os.Open(filepath.Join(snap.Dir, "state"))
	if err != nil {
		ram.Close()
		h.cow.release(cow)
		done()
		return
	}
	id, cmdline := snapID(snap), snap.Meta.Cmdline
	go func() {
		defer done()
		defer ram.Close()
		defer state.Close()
		if after != nil {
			select {
			case <-after.ready:
			case <-after.done:
			case <-p.ctx.Done():
			case <-time.After(spareWait):
			}
		}
		start := time.Now()
		m, ac, err := h.launch(p.ctx, shape, accel, layout{cmdline: cmdline, snapshot: true, incoming: true, cow: true, spare: true}, ram, state)
		if err == nil {
			m.cow = cow
			if err = m.load(p.ctx); err == nil {
				err = m.plugRing(p.ctx) // the shape's: plugged ahead too
			}
			if err != nil {
				m.abort(ac)
			}
		}
		if err != nil {
			h.cow.release(cow)
			if p.ctx.Err() == nil {
				h.log.Info("launching a spare VM failed; the next start restores as before", zap.String("snapshot", key), zap.Error(err))
			}
			return
		}
		sp := &spare{key: key, snap: id, m: m, ac: ac, cow: cow, born: time.Now()}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			h.endSpare(sp)
			return
		}
		var old *spare
		if len(p.ready) >= p.max { // the oldest other shape's makes way
			for _, o := range p.ready {
				if old == nil || o.born.Before(old.born) {
					old = o
				}
			}
			delete(p.ready, old.key)
			old.idle.Stop()
		}
		p.ready[key] = sp
		sp.idle = time.AfterFunc(p.idleTO, func() { h.dropSpare(key, sp) })
		p.mu.Unlock()
		if old != nil {
			h.endSpare(old)
		}
		m.log.Debug("spare VM ready", zap.String("snapshot", key), zap.Duration("took", time.Since(start)), zap.Int("pid", m.cmd.Process.Pid))
	}()
}

// dropSpare ends key's spare if it is still only (want nil: whichever)
// want.
func (h *qemuHypervisor) dropSpare(key string, want *spare) {
	p := &h.spares
	p.mu.Lock()
	sp := p.ready[key]
	if sp == nil || (want != nil && sp != want) {
		p.mu.Unlock()
		return
	}
	delete(p.ready, key)
	sp.idle.Stop()
	p.mu.Unlock()
	h.endSpare(sp)
}

// SpareMemory is the host memory the ready spare VMs take, in bytes, each
// counted as a machine's HostMemory (its processes and its part of the
// copy-on-write RAM): what the engine started beyond its machines.
func (h *qemuHypervisor) SpareMemory() (uint64, error) {
	p := &h.spares
	p.mu.Lock() // held: a spare is not adopted (counted twice) meanwhile
	defer p.mu.Unlock()
	var total uint64
	for _, sp := range p.ready {
		n, err := sp.m.HostMemory()
		if err != nil {
			return 0, fmt.Errorf("spare VM of %s: %w", sp.key, err)
		}
		total += n
	}
	return total, nil
}

// Close ends the spare VMs and launches no more; machines already started
// run on, and Start still works. See io.Closer.
func (h *qemuHypervisor) Close() error {
	p := &h.spares
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
	p.mu.Lock()
	ready := p.ready
	p.ready = map[string]*spare{}
	p.mu.Unlock()
	for _, sp := range ready {
		sp.idle.Stop()
		h.endSpare(sp)
	}
	return nil
}
