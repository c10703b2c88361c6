// Package engine owns Skiff's containers: their records on disk, the lifecycle state machine, one
// supervisor goroutine per running container (which owns its VM and agent), logs, port forwards,
// bind-mount change notification, stats, restart policies, clock resync and events.
//
// Every container runs in its own VM started through a vm.Hypervisor; the engine talks to the guest
// agent with an agentproto.Client over streams the VM dials.
//
//	lk, _ := engine.LockHome(home) // first: nothing else may touch the data dir of a running engine
//	st, _ := images.Open(filepath.Join(home, "images"))
//	hv, _ := qemu.New(qemu.Options{Log: log}) // backend/vm/qemu; vz.New(log) on macOS
//	e, err := engine.Open(ctx, engine.Config{Home: home, Lock: lk, Hypervisor: hv, Images: st, Kernel: kernelFunc})
//	c, _ := e.Create(ctx, engine.CreateOptions{Image: "busybox", Cmd: []string{"echo", "hi"}})
//	_ = e.Start(ctx, c.ID)
//	code, _ := e.Wait(ctx, c.ID)
//	logs, _ := e.Logs(ctx, c.ID, engine.LogOptions{})
//	for l := range logs { fmt.Print(string(l.Data)) }
//	_ = e.Close(ctx)
package engine

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/images"
	"github.com/skiff-containers/skiff/backend/vm"
)

// Engine manages the containers of one data dir. Its methods are safe for concurrent use.
type Engine struct {
	cfg    Config
	home   string
	log    *zap.Logger
	hv     vm.Hypervisor
	images ImageStore
	store  *images.Store // cfg.Images when it is one, for Images; nil otherwise
	lock   *HomeLock
	events *eventBus

	ctx    context.Context // cancelled by Close: ends supervisors' backoff waits and engine goroutines
	cancel context.CancelFunc
	bg     sync.WaitGroup // engine goroutines (clock sync, delayed restarts)

	kmu sync.Mutex // guards kernels
	// vmu serialises volume creation and removal and guards volPending: the volumes containers
	// being created hold (RemoveVolume refuses them as it refuses volumes in use).
	vmu        sync.Mutex
	volPending map[string]int
	volClaims  map[string]map[string]volClaim // disk volume → ID of a running VM's container → its hold
	volFreed   chan struct{}                  // closed (and cleared) when a claim is released

	lmu     sync.Mutex                   // guards labels
	labels  map[string]map[string]string // container ID → its labels, which its events carry
	kernels map[string][2]string         // arch → kernel image, initramfs

	fabric *vm.Fabric // the virtual switch of the container networks (QEMU VMs plug into it)
	// nmu guards nets and addrs; taken before mu and any ctr.mu.
	nmu   sync.Mutex
	nets  map[string]*Network              // by ID; nil once closed
	addrs map[string]map[netip.Addr]string // network ID → address → container ID

	mu         sync.Mutex      // guards the fields below
	ctrs       map[string]*ctr // by ID
	names      map[string]string
	tombstones tombstones // exit codes of removed containers, for a late Wait
	closed     bool
}

// Open opens (creating when needed) the data dir, takes its lock (or the one cfg.Lock holds), loads
// the container records and
// reconciles them: a record that says running (or paused, restarting) belongs to a VM that died with
// the previous engine, so it is marked exited (code 255) and its restart policy applied.
func Open(ctx context.Context, cfg Config) (*Engine, error) {
	e, err := open(ctx, cfg)
	if err != nil {
		cfg.Lock.Release() // the caller handed it over
	}
	return e, err
}

func open(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.Home == "" {
		h, err := DefaultHome()
		if err != nil {
			return nil, err
		}
		cfg.Home = h
	}
	home, err := filepath.Abs(cfg.Home)
	if err != nil {
		return nil, fmt.Errorf("data dir %q: %w", cfg.Home, err)
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.LogMaxSize <= 0 {
		cfg.LogMaxSize = 10 << 20
	}
	if cfg.LogMaxFiles <= 0 {
		cfg.LogMaxFiles = 3
	}
	if cfg.ClockSync <= 0 {
		cfg.ClockSync = time.Minute
	}
	if cfg.HostIP == "" {
		cfg.HostIP = "127.0.0.1"
	}
	for _, d := range []string{home, filepath.Join(home, "containers"), filepath.Join(home, "run"), filepath.Join(home, networksDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("creating data dir: %w", err)
		}
	}
	lk := cfg.Lock
	if lk == nil {
		if lk, err = LockHome(home); err != nil {
			return nil, err
		}
	} else if lk.home != home {
		return nil, fmt.Errorf("%w: Config.Lock locks %q, not the data dir %q", ErrInvalid, lk.home, home)
	}
	store, isStore := cfg.Images.(*images.Store)
	if isStore && store == nil {
		cfg.Images = nil // a nil *images.Store is no store: Create and Pull say so
	}
	e := &Engine{
		cfg: cfg, home: home, log: cfg.Log, hv: cfg.Hypervisor, images: cfg.Images, store: store, lock: lk,
		events: newEventBus(), ctrs: map[string]*ctr{}, names: map[string]string{},
		fabric: vm.NewFabric(), addrs: map[string]map[netip.Addr]string{},
	}
	if err := e.loadNetworks(); err != nil {
		lk.Release()
		return nil, err
	}
	if err := e.events.loadHistory(home); err != nil {
		e.log.Warn("event history lost", zapErr(err))
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	recs, err := e.loadRecords()
	if err != nil {
		lk.Release()
		return nil, err
	}
	for _, rec := range recs {
		c := newCtr(e, *rec)
		e.ctrs[rec.ID] = c
		e.names[rec.Name] = rec.ID
		e.setLabels(rec.ID, rec.Config.Labels)
	}
	e.cleanVolumes()
	e.restoreEndpoints()
	e.reconcile()
	e.bg.Add(1)
	go e.clockLoop()
	if p, ok := e.hv.(vm.Preparer); ok && cfg.WarmUp {
		e.bg.Add(1)
		go e.warmUp(p)
	}
	return e, nil
}

// Close stops every running container (gracefully, bounded by ctx; a container whose restart policy
// is always or unless-stopped is started again by the next Open), ends the engine's goroutines and
// releases the data-dir lock.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	var running []*ctr
	for _, c := range e.ctrs {
		running = append(running, c)
	}
	e.mu.Unlock()

	var wg sync.WaitGroup
	for _, c := range running {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.shutdownForEngineClose(ctx)
		}()
	}
	wg.Wait()
	for _, c := range running { // a last try for records whose save failed
		c.mu.Lock()
		if c.unsaved != nil {
			c.recordLocked(func(*Container) {})
		}
		c.mu.Unlock()
	}
	e.cancel()
	e.bg.Wait()
	e.nmu.Lock()
	e.nets = nil
	e.nmu.Unlock()
	e.events.close()
	if err := e.events.saveHistory(e.home); err != nil {
		e.log.Warn("saving the event history", zapErr(err))
	}
	return e.lock.Release()
}

// Images returns the image store the engine was opened with, for the front ends' image commands
// (list, tag, push…); nil when Config.Images was not an *images.Store.
func (e *Engine) Images() *images.Store { return e.store }

// Home returns the data dir.
func (e *Engine) Home() string { return e.home }

// Hypervisor is the backend the engine starts VMs with.
func (e *Engine) Hypervisor() vm.Hypervisor { return e.hv }

// ImageInUse reports whether a container uses the image (by image ID); wire it into
// images.WithInUse so images in use are not removed.
func (e *Engine) ImageInUse(imageID string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.ctrs {
		if c.imageID() == imageID {
			return true
		}
	}
	return false
}

// lookup finds a container by full ID, name or unique ID prefix.
func (e *Engine) lookup(ref string) (*ctr, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lookupLocked(ref)
}

func (e *Engine) lookupLocked(ref string) (*ctr, error) {
	if e.closed {
		return nil, ErrClosed
	}
	if ref == "" {
		return nil, fmt.Errorf("container \"\": %w", ErrNotFound)
	}
	if c, ok := e.ctrs[ref]; ok {
		return c, nil
	}
	if id, ok := e.names[strings.TrimPrefix(ref, "/")]; ok {
		if c, ok := e.ctrs[id]; ok {
			return c, nil
		}
	}
	var found *ctr
	for id, c := range e.ctrs {
		if strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, fmt.Errorf("container %q: the prefix matches more than one container: %w", ref, ErrConflict)
			}
			found = c
		}
	}
	if found == nil {
		return nil, fmt.Errorf("no such container %q: %w", ref, ErrNotFound)
	}
	return found, nil
}

// List returns the containers (running ones only unless opts.All), newest first.
func (e *Engine) List(ctx context.Context, opts ListOptions) ([]Container, error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	cs := make([]*ctr, 0, len(e.ctrs))
	for _, c := range e.ctrs {
		cs = append(cs, c)
	}
	e.mu.Unlock()
	out := make([]Container, 0, len(cs))
	for _, c := range cs {
		rec := c.snapshot()
		if !opts.All && rec.State != StateRunning && rec.State != StatePaused && rec.State != StateRestarting {
			continue
		}
		out = append(out, rec)
	}
	sortNewestFirst(out)
	return out, nil
}

// Inspect returns a container's record.
func (e *Engine) Inspect(ctx context.Context, id string) (*Container, error) {
	c, err := e.lookup(id)
	if err != nil {
		return nil, err
	}
	rec := c.snapshot()
	return &rec, nil
}

func sortNewestFirst(cs []Container) {
	for i := 1; i < len(cs); i++ {
		for j := i; j > 0 && cs[j].Created.After(cs[j-1].Created); j-- {
			cs[j], cs[j-1] = cs[j-1], cs[j]
		}
	}
}

// emit publishes an event. Attribute values may carry the guest's words (an agent's error): they
// are made safe to print (guestText).
func (e *Engine) emit(typ, action, id, name string, attrs map[string]string) {
	for k, v := range attrs {
		attrs[k] = guestText(v)
	}
	if typ == "container" {
		e.lmu.Lock()
		for k, v := range e.labels[id] { // as Docker's events do: filters by label match them
			if _, ok := attrs[k]; !ok {
				if attrs == nil {
					attrs = map[string]string{}
				}
				attrs[k] = v
			}
		}
		e.lmu.Unlock()
	}
	e.events.publish(Event{Time: time.Now(), Type: typ, Action: action, ID: id, Name: name, Attributes: attrs})
}

// Events streams engine events until ctx ends (or the engine closes), then closes the channel. A
// subscriber that falls more than 1024 events behind loses the oldest.
func (e *Engine) Events(ctx context.Context) <-chan Event { return e.events.subscribe(ctx) }

// setLabels records the labels container id's events carry; nil forgets them.
func (e *Engine) setLabels(id string, labels map[string]string) {
	e.lmu.Lock()
	defer e.lmu.Unlock()
	if labels == nil {
		delete(e.labels, id)
		return
	}
	if e.labels == nil {
		e.labels = map[string]map[string]string{}
	}
	e.labels[id] = copyLabels(labels)
}
