package engine

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
)

// ctr is the engine's in-memory side of one container. Its record is changed only under mu, saved
// first and then changed (commitLocked), so the record and its file agree. While a supervisor exists (states running, paused, restarting) sup is set.
type ctr struct {
	e *Engine

	mountMu sync.Mutex // held by AddMount and RemoveMount: one mount change at a time

	mu       sync.Mutex // guards rec, sup, exitCh, removing, stdin, unsaved, and boot.mounted
	rec      Container
	sup      *supervisor
	exitCh   chan struct{} // closed at the next exit ("die") and replaced
	removing bool
	// helper: closed when the short-lived VM a copy started on the stopped container's disks has
	// ended (guestcopy.go); nil when there is none. Start and Remove wait for it.
	helper chan struct{}
	// scheduled: a restart owed from before this engine started is pending (reconcile); Start,
	// Stop and Remove cancel it.
	scheduled bool
	ttyRows   uint16 // terminal size set through Attach, for the next run (0: 24x80)
	ttyCols   uint16
	// unsaved: the last save of a change that had already happened failed (recordLocked); the
	// record is ahead of its file until the next save.
	unsaved error

	logs   *logStore  // the container's JSON-lines log; followers wait on it
	attach attachHub  // Attach subscribers of the workload's output
	stdin  *stdinPipe // feeds the workload's stdin from Attach (OpenStdin containers)
}

// supervisor is one goroutine's worth of state: it lives from Start until the container has exited
// for good (restart policy exhausted, stop, kill, remove), across restarts. It owns the port
// listeners and the current boot.
type supervisor struct {
	ctx    context.Context // cancelled to end a restart backoff early (stop, remove, engine close)
	cancel context.CancelFunc
	done   chan struct{} // closed when the supervisor goroutine has finished

	listeners []net.Listener

	// Guarded by ctr.mu:
	boot     *boot // nil while restarting
	stopping bool  // a Stop/Kill/Remove is ending the container: no restart
}

// boot is one VM with the workload running in it.
type boot struct {
	machine   vm.Machine
	client    *agentproto.Client
	proc      *agentproto.Process
	started   time.Time
	pumps     sync.WaitGroup // stdout and stderr readers
	writer    *logWriter
	stopWatch func()
	stats     *statsSampler
	subs      bootSubs // Attach subscribers of this boot's output
	// mounted maps each bind target mounted in this VM to its share's tag (guarded by ctr.mu);
	// hotplugs counts the shares AddMount plugged in, which are tagged h0, h1, …
	mounted  map[string]string
	hotplugs int
	// watches stops the watchers of binds mounted live, by target; watchDone: stopWatch ran, a
	// new one is stopped at once (both guarded by ctr.mu).
	watches   map[string]func()
	watchDone bool
	// releaseVols gives up the disk volumes this VM holds (claimVolumes) once it has ended.
	releaseVols func()

	killMu     sync.Mutex // guards killReason
	killReason string     // why the engine killed the VM (a silent agent); "" when it did not
}

func newCtr(e *Engine, rec Container) *ctr {
	return &ctr{
		e: e, rec: rec, exitCh: make(chan struct{}),
		logs:  newLogStore(e.logDir(rec.ID), e.cfg.LogMaxSize, e.cfg.LogMaxFiles),
		stdin: newStdinPipe(),
	}
}

func (c *ctr) snapshot() Container {
	c.mu.Lock()
	defer c.mu.Unlock()
	return cloneRecord(c.rec)
}

func (c *ctr) imageID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rec.ImageID
}

// commitLocked changes the record through mut and persists it: mut works on a copy, which is
// saved and only then becomes the record; c.mu is held. On a failed save the record stays as it
// was (as on disk) and the error is returned. While the container is being removed nothing is
// saved.
func (c *ctr) commitLocked(mut func(r *Container)) error {
	next := cloneRecord(c.rec)
	mut(&next)
	if !c.removing {
		snap := cloneRecord(next)
		if err := c.e.saveRecord(&snap); err != nil {
			return err
		}
	}
	c.rec = next
	c.unsaved = nil
	return nil
}

// recordLocked is commitLocked for what has already happened and cannot be undone (a workload
// exited, a VM booted for a restart, the engine stopped it): the record follows the facts even
// when the save fails. That failure is logged and kept in unsaved; the next commit writes the
// whole record again.
func (c *ctr) recordLocked(mut func(r *Container)) {
	if err := c.commitLocked(mut); err != nil {
		c.e.log.Error("saving container record; the engine's view is ahead of the data dir until the next save",
			zapID(c.rec.ID), zapErr(err))
		mut(&c.rec)
		c.unsaved = err
	}
}

func cloneRecord(r Container) Container {
	r.Ports = append([]PortMapping(nil), r.Ports...)
	r.Mounts = append([]Mount(nil), r.Mounts...)
	if r.Health != nil {
		h := *r.Health
		h.Log = append([]HealthResult(nil), h.Log...)
		r.Health = &h
	}
	r.Networks = slices.Clone(r.Networks) // nil stays nil: a record from before networks
	for i := range r.Networks {
		r.Networks[i].Aliases = slices.Clone(r.Networks[i].Aliases)
	}
	r.Config.Networks = slices.Clone(r.Config.Networks)
	return r
}

// currentBoot returns the running boot, or an error wrapping ErrNotRunning naming the container.
func (c *ctr) currentBoot() (*boot, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.currentBootLocked()
}

func (c *ctr) currentBootLocked() (*boot, error) {
	if c.sup == nil || c.sup.boot == nil {
		return nil, fmt.Errorf("container %s is %s: %w", c.rec.Name, c.rec.State, ErrNotRunning)
	}
	return c.sup.boot, nil
}

// validTransition is the lifecycle state machine: which state may follow which.
func validTransition(from, to State) bool {
	switch from {
	case StateCreated:
		return to == StateRunning || to == StateExited || to == StateDead
	case StateRunning:
		return to == StatePaused || to == StateExited || to == StateRestarting || to == StateDead
	case StatePaused:
		return to == StateRunning || to == StateExited || to == StateDead
	case StateRestarting:
		return to == StateRunning || to == StateExited || to == StateDead
	case StateExited:
		return to == StateRunning || to == StateRestarting || to == StateDead
	case StateDead:
		return false
	}
	return false
}

// setState moves r (c's record or its next version) to a new state, allowing transitions the
// state machine does not (a bug, logged, not a user error).
func (c *ctr) setState(r *Container, to State) {
	if r.State == to {
		return
	}
	if !validTransition(r.State, to) {
		c.e.log.Warn("unexpected container state transition", zapID(r.ID),
			zapStr("from", string(r.State)), zapStr("to", string(to)))
	}
	r.State = to
}

// stdinPipe carries Attach's stdin to whichever boot runs. A write before the workload starts waits
// for it; closing an attachment's stdin sends stdin EOF to the workload.
type stdinPipe struct {
	data chan []byte
	mu   sync.Mutex    // guards eof
	eof  chan struct{} // closed by the current attachment's Close
}

func newStdinPipe() *stdinPipe {
	return &stdinPipe{data: make(chan []byte), eof: make(chan struct{})}
}

// writer returns a stdin for one attachment.
func (p *stdinPipe) writer() io.WriteCloser {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.eof: // the previous attachment closed stdin: a new one starts afresh
		p.eof = make(chan struct{})
	default:
	}
	return &stdinEnd{p: p, eof: p.eof}
}

// feed copies attachment stdin to the workload until stdin EOF or the workload ends.
func (p *stdinPipe) feed(proc *agentproto.Process) {
	p.mu.Lock()
	eof := p.eof
	p.mu.Unlock()
	for {
		select {
		case b := <-p.data:
			if _, err := proc.Stdin().Write(b); err != nil {
				return
			}
		case <-eof:
			_ = proc.Stdin().Close()
			return
		case <-proc.Done():
			return
		}
	}
}

type stdinEnd struct {
	p      *stdinPipe
	eof    chan struct{}
	closed sync.Once
}

func (s *stdinEnd) Write(b []byte) (int, error) {
	buf := append([]byte(nil), b...)
	select {
	case s.p.data <- buf:
		return len(b), nil
	case <-s.eof:
		return 0, io.ErrClosedPipe
	}
}

func (s *stdinEnd) Close() error {
	s.closed.Do(func() {
		s.p.mu.Lock()
		select {
		case <-s.eof:
		default:
			close(s.eof)
		}
		s.p.mu.Unlock()
	})
	return nil
}
