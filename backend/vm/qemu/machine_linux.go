package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/yamux"
	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/shmring"
	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/backend/vm/internal/usernet"
)

// qemuMachine is one qemu-system process, its virtiofsd daemons, the QMP
// connection and the yamux session to the agent. The goroutine running loop
// owns the lifecycle: every state change happens there.
type qemuMachine struct {
	h           *qemuHypervisor // starts the daemons of shares added later
	spec        vm.MachineSpec
	log         *zap.Logger
	consoleLog  string
	console     *vm.ConsoleFile // written by the console pump from the guest's serial port; nil until attached (a spare)
	consoleEnd  chan struct{}   // closed when the pump has written the last of the console
	conConn     net.Conn        // our end of the serial port's socket, read by the pump
	qemuOut     *qemuOutput     // a spare's qemu output until attached (spare_linux.go)
	cmd         *exec.Cmd
	fsds        []*daemon
	fsdDied     chan string // "virtiofsd for share …: exit status"; buffered, one per daemon
	qmp         *qmp
	agentConn   net.Conn         // the virtio-serial port's socket
	ring        []byte           // the ring's shared memory, mapped; nil without one
	ringPlugged bool             // a restored VM's ring device is hot-plugged
	sess        *yamux.Session   // set once by connect under mu; read by Dial after ready
	ringConn    *shmring.Conn    // set with sess when the channel is on the ring
	net         *usernet.Network // the VM's network; nil with NetworkNone
	netEnd      net.Conn         // our end of qemu's network socket until startNet hands it to net

	ready  chan struct{} // closed when the agent answered a ping
	exited chan error    // qemu's exit, sent once by the waiter
	reqs   chan func()   // run inside loop
	done   chan struct{} // closed by loop after cleanup

	mu       sync.Mutex // guards state, changed, err, stopping, ended and the setting of sess
	state    vm.State
	changed  chan struct{} // closed (and replaced) by each change of state
	err      error
	stopping bool // a Stop asked for the exit
	ended    bool // finish closed the channel

	// hotplug: restored from a snapshot, the machine has hotplugPorts root
	// ports for shares, the first len(spec.Shares) taken. Set before loop
	// runs; spec.Shares and fsds grow only inside loop (AddShare).
	hotplug bool
	plugged int     // shares plugged (owned by loop once it runs)
	cow     *cowRAM // its RAM, mapped copy-on-write (no hotplug of shares); nil: its own
}

// daemon is one virtiofsd; only its waiter goroutine calls cmd.Wait.
type daemon struct {
	tag  string
	cmd  *exec.Cmd
	done chan struct{} // closed once reaped
}

func (m *qemuMachine) watchDaemon(d *daemon) {
	err := d.cmd.Wait()
	close(d.done)
	m.fsdDied <- fmt.Sprintf("virtiofsd for share %q exited (%v)", d.tag, err)
}

var _ vm.Machine = (*qemuMachine)(nil)

func (m *qemuMachine) loop() {
	reason := "" // SHUTDOWN reason from QMP: guest-shutdown, guest-reset, guest-panic, host-qmp-quit, host-signal
	events := m.qmp.events
	for {
		select {
		case msg := <-m.fsdDied:
			// virtiofsd also ends when qemu did: only a daemon dying first is a failure.
			select {
			case werr := <-m.exited:
				if r := drainShutdown(events); r != "" {
					reason = r
				}
				m.finish(werr, reason)
				return
			case <-time.After(300 * time.Millisecond):
			}
			m.mu.Lock()
			stopping := m.stopping
			m.mu.Unlock()
			qctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := m.qmp.status(qctx)
			cancel()
			if !stopping && err == nil && (st == "running" || st == "paused") {
				m.log.Warn("share daemon died; killing the machine", zap.String("why", msg))
				reason = msg
				m.kill()
			}
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if r := shutdownReason(ev); r != "" {
				reason = r
			}
		case fn := <-m.reqs:
			fn()
		case werr := <-m.exited:
			// The SHUTDOWN event may still be queued behind others: read the
			// events to their end (qemu's exit closes QMP) to learn why.
			if r := drainShutdown(events); r != "" {
				reason = r
			}
			m.finish(werr, reason)
			return
		}
	}
}

// shutdownReason is the reason an event gives for the machine's end, if
// any: SHUTDOWN's (guest-shutdown, guest-reset, host-qmp-quit, …) or
// guest-panic.
func shutdownReason(ev qmpEvent) string {
	switch ev.Event {
	case "SHUTDOWN":
		var d struct {
			Reason string `json:"reason"`
		}
		_ = json.Unmarshal(ev.Data, &d)
		return d.Reason
	case "GUEST_PANICKED":
		return "guest-panic"
	}
	return ""
}

// drainShutdown reads events until the channel closes (or briefly, if it
// does not) and returns the last shutdown reason among them.
func drainShutdown(events <-chan qmpEvent) string {
	reason := ""
	if events == nil {
		return ""
	}
	deadline := time.After(time.Second)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return reason
			}
			if r := shutdownReason(ev); r != "" {
				reason = r
			}
		case <-deadline:
			return reason
		}
	}
}

// finish runs in loop once qemu exited: decide stopped or failed, clean up.
func (m *qemuMachine) finish(werr error, reason string) {
	m.closeChannel()
	m.qmp.close()
	m.killDaemons()
	m.closeNet()
	m.removeStateFiles()
	m.endConsole()
	m.qemuOut.close()
	m.mu.Lock()
	stopping := m.stopping
	m.mu.Unlock()
	ready := false
	select {
	case <-m.ready:
		ready = true
	default:
	}
	switch {
	case stopping, werr == nil && reason == "guest-shutdown" && ready:
		m.setState(vm.StateStopped)
	default:
		why := reason
		switch {
		case why == "guest-shutdown": // the agent's boot failed: the console says why
			why = "the guest powered off before its agent was ready"
		case why == "" || why == "guest-reset":
			why = "the guest kernel crashed or rebooted"
		}
		if werr != nil && !strings.HasPrefix(reason, "virtiofsd") {
			why = fmt.Sprintf("qemu exited: %v", werr)
		}
		if p := vm.PanicLine(m.consoleLog); p != "" {
			why = p
		}
		tail := vm.ConsoleTail(m.consoleLog, 15)
		if q := m.qemuLog(); q != "" && werr != nil {
			tail += "\nqemu: " + q
		}
		m.mu.Lock()
		m.err = fmt.Errorf("machine %q failed: %s; console log %s ends:\n%s", m.spec.ID, why, m.consoleLog, tail)
		m.mu.Unlock()
		m.setState(vm.StateFailed)
	}
	m.log.Debug("machine ended", zap.String("state", string(m.State())), zap.String("reason", reason))
	close(m.done)
}

func (m *qemuMachine) killDaemons() {
	for _, d := range m.fsds {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, d := range m.fsds {
		select {
		case <-d.done:
		case <-time.After(2 * time.Second):
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	}
}

func (m *qemuMachine) removeStateFiles() {
	if m.spec.StateDir == "" { // a spare never attached has none
		return
	}
	os.Remove(filepath.Join(m.spec.StateDir, "qemu.pid"))
	for _, sh := range m.spec.Shares {
		os.Remove(filepath.Join(m.spec.StateDir, "virtiofsd-"+sh.Tag+".pid"))
		os.Remove(filepath.Join(m.spec.StateDir, "src-"+sh.Tag)) // a share's mount point (empty out here)
	}
}

func (m *qemuMachine) setState(s vm.State) {
	m.mu.Lock()
	prev := m.state
	m.state = s
	if prev != s {
		close(m.changed)
		m.changed = make(chan struct{})
	}
	m.mu.Unlock()
	if prev != s {
		m.log.Debug("state", zap.String("from", string(prev)), zap.String("to", string(s)))
	}
}

// do runs fn inside loop; ErrNotRunning once the machine ended.
func (m *qemuMachine) do(ctx context.Context, fn func() error) error {
	errc := make(chan error, 1)
	select {
	case m.reqs <- func() { errc <- fn() }:
		return <-errc
	case <-m.done:
		return fmt.Errorf("machine %q: %w", m.spec.ID, vm.ErrNotRunning)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// State reports the current state.
func (m *qemuMachine) State() vm.State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state
}

// Done is closed once the machine ended and was cleaned up.
func (m *qemuMachine) Done() <-chan struct{} { return m.done }

// Err says why the machine failed.
func (m *qemuMachine) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// Dial waits for the agent (and, while the machine is paused, for its
// resumption), then opens a yamux stream to it. ctx bounds all of it: opening
// blocks when the agent has acknowledged none of the session's last 256 new
// streams, and a stream opened after ctx ended is closed.
func (m *qemuMachine) Dial(ctx context.Context) (net.Conn, error) {
	select {
	case <-m.ready:
	case <-m.done:
		return nil, fmt.Errorf("dialing agent of %q: %w", m.spec.ID, vm.ErrNotRunning)
	case <-ctx.Done():
		return nil, fmt.Errorf("dialing agent of %q: waiting for the agent: %w", m.spec.ID, ctx.Err())
	}
	for {
		// A paused guest acknowledges nothing: open no stream it would find on resumption.
		m.mu.Lock()
		paused, changed := m.state == vm.StatePaused, m.changed
		m.mu.Unlock()
		if !paused {
			break
		}
		select {
		case <-changed:
		case <-m.done:
			return nil, fmt.Errorf("dialing agent of %q: %w", m.spec.ID, vm.ErrNotRunning)
		case <-ctx.Done():
			return nil, fmt.Errorf("dialing agent of %q: the machine is paused: %w", m.spec.ID, ctx.Err())
		}
	}
	type opened struct {
		s   *yamux.Stream
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		s, err := m.sess.OpenStream()
		ch <- opened{s, err}
	}()
	select {
	case o := <-ch:
		if o.err != nil {
			err := o.err
			if m.sess.IsClosed() {
				err = fmt.Errorf("%w (%v)", vm.ErrNotRunning, err)
			}
			return nil, fmt.Errorf("dialing agent of %q: %w", m.spec.ID, err)
		}
		return o.s, nil
	case <-ctx.Done():
		go func() { // the session's end (the machine's) ends a blocked OpenStream
			if o := <-ch; o.s != nil {
				o.s.Close()
			}
		}()
		return nil, fmt.Errorf("dialing agent of %q: opening a stream: %w", m.spec.ID, ctx.Err())
	}
}

// Pause stops the vCPUs through QMP.
func (m *qemuMachine) Pause(ctx context.Context) error {
	return m.do(ctx, func() error {
		switch m.State() {
		case vm.StatePaused:
			return nil
		case vm.StateRunning:
		default:
			return fmt.Errorf("pausing %q in state %s: %w", m.spec.ID, m.State(), vm.ErrNotRunning)
		}
		if _, err := m.qmp.do(ctx, "stop", nil); err != nil {
			return fmt.Errorf("pausing %q: %w", m.spec.ID, err)
		}
		m.setState(vm.StatePaused)
		return nil
	})
}

// Resume continues the vCPUs through QMP.
func (m *qemuMachine) Resume(ctx context.Context) error {
	return m.do(ctx, func() error {
		switch m.State() {
		case vm.StateRunning:
			return nil
		case vm.StatePaused:
		default:
			return fmt.Errorf("resuming %q in state %s: %w", m.spec.ID, m.State(), vm.ErrNotRunning)
		}
		if _, err := m.qmp.do(ctx, "cont", nil); err != nil {
			return fmt.Errorf("resuming %q: %w", m.spec.ID, err)
		}
		m.setState(vm.StateRunning)
		return nil
	})
}

// Stop ends the machine; see Machine.Stop. Without force qemu quits
// through QMP and is killed when it has not exited within a moment.
func (m *qemuMachine) Stop(ctx context.Context, force bool) error {
	err := m.do(ctx, func() error {
		m.mu.Lock()
		m.stopping = true
		m.mu.Unlock()
		m.setState(vm.StateStopping)
		return nil
	})
	if errors.Is(err, vm.ErrNotRunning) {
		return nil // already ended
	}
	if force || err != nil { // err: ctx ended before the loop took the request
		m.mu.Lock()
		m.stopping = true
		m.mu.Unlock()
		m.kill()
		<-m.done
		return nil
	}
	qctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_, _ = m.qmp.do(qctx, "quit", nil)
	cancel()
	select {
	case <-m.done:
	case <-time.After(2 * time.Second):
		m.kill()
		<-m.done
	}
	return nil
}

func (m *qemuMachine) kill() {
	if m.cmd.Process != nil {
		_ = m.cmd.Process.Kill()
	}
}
