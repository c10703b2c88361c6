//go:build darwin

package vz

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Code-Hex/vz/v3"
	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/vm"
)

// vzMachine is one vz.VirtualMachine. Live states (starting, running,
// paused) are read from vz itself, which updates them from its own observer;
// the goroutine running loop is the only reader of the VM's
// StateChangedNotify channel and makes the terminal transition (stopped or
// failed), after which Done is closed.
type vzMachine struct {
	spec       vm.MachineSpec
	log        *zap.Logger
	consoleLog string
	console    *vm.ConsolePipe // the console's way to consoleLog; closed once the VM is gone
	closeNet   func()          // ends the machine's user-space network once the VM is gone; nil: none
	vm         *vz.VirtualMachine
	sock       *vz.VirtioSocketDevice
	states     <-chan vz.VirtualMachineState

	agentSeen atomic.Bool   // a Dial has reached the agent
	done      chan struct{} // closed by loop once terminal

	mu       sync.Mutex // guards final, err, stopping
	final    vm.State   // StateStopped or StateFailed once loop finished; "" before
	err      error
	stopping bool // a Stop is under way: the end is expected
}

var _ vm.Machine = (*vzMachine)(nil)

func newVZMachine(spec vm.MachineSpec, log *zap.Logger, consoleLog string, v *vz.VirtualMachine, sock *vz.VirtioSocketDevice) *vzMachine {
	return &vzMachine{spec: spec, log: log, consoleLog: consoleLog, vm: v, sock: sock,
		states: v.StateChangedNotify(), done: make(chan struct{})}
}

// stateFromVz maps the framework's states onto ours; transitional states
// report the state being left until the transition completes.
func stateFromVz(s vz.VirtualMachineState) vm.State {
	switch s {
	case vz.VirtualMachineStateStarting, vz.VirtualMachineStateRestoring:
		return vm.StateStarting
	case vz.VirtualMachineStateRunning, vz.VirtualMachineStatePausing:
		return vm.StateRunning
	case vz.VirtualMachineStatePaused, vz.VirtualMachineStateResuming, vz.VirtualMachineStateSaving:
		return vm.StatePaused
	case vz.VirtualMachineStateStopping:
		return vm.StateStopping
	case vz.VirtualMachineStateError:
		return vm.StateFailed
	default: // VirtualMachineStateStopped
		return vm.StateStopped
	}
}

// loop waits for the VM to end. Each notification is a hint: the current
// state is re-read from vz, so stale notifications do no harm.
func (m *vzMachine) loop() {
	for range m.states {
		s := m.vm.State()
		m.log.Debug("vz state", zap.String("state", s.String()))
		switch s {
		case vz.VirtualMachineStateStopped:
			m.finish(nil)
			return
		case vz.VirtualMachineStateError:
			m.finish(errors.New("Virtualization.framework reported an internal error"))
			return
		}
	}
}

// finish records the end: stopped when asked for or when the guest powered
// off after its agent came up; failed (with the console log's tail) on a
// framework error, a kernel panic (vz turns the panic=-1 reboot into a stop)
// or a guest that went away before its agent ever answered.
func (m *vzMachine) finish(vmErr error) {
	if m.console != nil && !m.console.Close(vm.ConsoleWait) {
		m.log.Warn("the console log is still being written after the VM stopped")
	}
	if m.closeNet != nil {
		m.closeNet()
	}
	m.mu.Lock()
	if vmErr == nil && !m.stopping {
		tail := vm.ConsoleTail(m.consoleLog, 40)
		switch {
		case strings.Contains(tail, "Kernel panic"):
			vmErr = errors.New("kernel panic")
		case !m.agentSeen.Load():
			vmErr = errors.New("the guest stopped before its agent answered")
		}
	}
	if vmErr != nil && !m.stopping {
		m.err = fmt.Errorf("machine %q failed: %v; console log %s ends:\n%s", m.spec.ID, vmErr, m.consoleLog, vm.ConsoleTail(m.consoleLog, 15))
		m.final = vm.StateFailed
	} else {
		m.final = vm.StateStopped
	}
	final := m.final
	m.mu.Unlock()
	m.log.Debug("machine ended", zap.String("state", string(final)))
	close(m.done)
}

// State reports the current state.
func (m *vzMachine) State() vm.State {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.final != "" {
		return m.final
	}
	s := stateFromVz(m.vm.State())
	if m.stopping || s.Terminal() {
		return vm.StateStopping // ending; Done not closed yet
	}
	return s
}

// Done is closed once the machine stopped or failed.
func (m *vzMachine) Done() <-chan struct{} { return m.done }

// Err says why the machine failed.
func (m *vzMachine) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

func (m *vzMachine) ended() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// connectTimeout bounds one vsock connection attempt (vz may leave a connect
// to a port nobody listens on unanswered).
const connectTimeout = 2 * time.Second

// Dial connects to the agent's vsock port, retrying until the agent listens
// or ctx ends. Each connection is one agent stream.
func (m *vzMachine) Dial(ctx context.Context) (net.Conn, error) {
	backoff := 10 * time.Millisecond
	var last error
	for {
		if m.ended() {
			return nil, fmt.Errorf("dialing agent of %q: %w", m.spec.ID, vm.ErrNotRunning)
		}
		conn, err := m.connect(ctx)
		if err == nil {
			m.agentSeen.Store(true)
			return conn, nil
		}
		last = err
		select {
		case <-m.done:
			return nil, fmt.Errorf("dialing agent of %q: %w", m.spec.ID, vm.ErrNotRunning)
		case <-ctx.Done():
			return nil, fmt.Errorf("dialing agent of %q on vsock port %d: %w (last attempt: %v)", m.spec.ID, vm.DefaultVsockPort, ctx.Err(), last)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 250*time.Millisecond)
	}
}

// connect makes one attempt. An attempt that outlives its timeout is left to
// finish on its own and its connection, if any, closed.
func (m *vzMachine) connect(ctx context.Context) (net.Conn, error) {
	type result struct {
		conn *vz.VirtioSocketConnection
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := m.sock.Connect(vm.DefaultVsockPort)
		ch <- result{c, err}
	}()
	t := time.NewTimer(connectTimeout)
	defer t.Stop()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, r.err
		}
		return r.conn, nil
	case <-t.C:
	case <-ctx.Done():
	}
	go func() {
		if r := <-ch; r.conn != nil {
			r.conn.Close()
		}
	}()
	return nil, fmt.Errorf("vsock connect to port %d: no answer within %s", vm.DefaultVsockPort, connectTimeout)
}

// call runs a blocking vz operation, giving up waiting when ctx ends.
func (m *vzMachine) call(ctx context.Context, what string, fn func() error) error {
	errc := make(chan error, 1)
	go func() { errc <- fn() }()
	select {
	case err := <-errc:
		if err != nil {
			return fmt.Errorf("%s %q: %w", what, m.spec.ID, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s %q: %w", what, m.spec.ID, ctx.Err())
	}
}

// waitState polls vz until it reports want (its observer may trail the
// completion handler by a moment).
func (m *vzMachine) waitState(ctx context.Context, want vm.State) {
	for i := 0; i < 100 && stateFromVz(m.vm.State()) != want && ctx.Err() == nil; i++ {
		time.Sleep(10 * time.Millisecond)
	}
}

// Pause freezes the vCPUs.
func (m *vzMachine) Pause(ctx context.Context) error {
	switch s := m.State(); s {
	case vm.StatePaused:
		return nil
	case vm.StateRunning:
	default:
		return fmt.Errorf("pausing %q in state %s: %w", m.spec.ID, s, vm.ErrNotRunning)
	}
	if err := m.call(ctx, "pausing", m.vm.Pause); err != nil {
		return err
	}
	m.waitState(ctx, vm.StatePaused)
	return nil
}

// Resume continues the vCPUs.
func (m *vzMachine) Resume(ctx context.Context) error {
	switch s := m.State(); s {
	case vm.StateRunning:
		return nil
	case vm.StatePaused:
	default:
		return fmt.Errorf("resuming %q in state %s: %w", m.spec.ID, s, vm.ErrNotRunning)
	}
	if err := m.call(ctx, "resuming", m.vm.Resume); err != nil {
		return err
	}
	m.waitState(ctx, vm.StateRunning)
	return nil
}

// hardStopWait bounds the wait for vz to report the end after Stop.
const hardStopWait = 15 * time.Second

// Stop ends the machine: without force the guest's power button
// (RequestStop), and when ctx ends first, or with force, vz's Stop. See
// Machine.Stop.
func (m *vzMachine) Stop(ctx context.Context, force bool) error {
	if m.ended() {
		return nil
	}
	m.mu.Lock()
	m.stopping = true
	m.mu.Unlock()
	if !force {
		if stateFromVz(m.vm.State()) == vm.StatePaused {
			_ = m.call(ctx, "resuming", m.vm.Resume) // a paused guest cannot power off
		}
		if m.requestStop() {
			select {
			case <-m.done:
				return nil
			case <-ctx.Done():
				m.log.Debug("graceful stop timed out; stopping the VM")
			}
		}
	}
	return m.hardStop()
}

// requestStop presses the guest's power button.
func (m *vzMachine) requestStop() bool {
	if !m.vm.CanRequestStop() {
		return false
	}
	ok, err := m.vm.RequestStop()
	if err != nil {
		m.log.Debug("vz RequestStop", zap.Error(err))
	}
	return ok && err == nil
}

// hardStop pulls the plug and waits for loop to record the end.
func (m *vzMachine) hardStop() error {
	if m.vm.CanStop() {
		if err := m.vm.Stop(); err != nil && !m.ended() {
			m.log.Debug("vz Stop", zap.Error(err))
		}
	}
	select {
	case <-m.done:
		return nil
	case <-time.After(hardStopWait):
		return fmt.Errorf("stopping %q: the VM did not stop within %s (vz state %s)", m.spec.ID, hardStopWait, m.vm.State())
	}
}
