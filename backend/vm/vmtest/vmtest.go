// Package vmtest is a vm.Hypervisor for tests that boots nothing: each machine is an in-memory
// guest agent speaking the real wire protocol (agentproto) over in-process pipes, so code above the
// hypervisor (the engine's lifecycle, restarts, logs) runs its real paths without root, QEMU or
// a guest kernel, on any OS. The workload is scripted, not executed: its first argument names what
// it does.
//
//	echo ARGS…   writes ARGS (joined by spaces) and a newline to stdout, exits 0
//	exit N       exits N
//	cat          copies stdin to stdout until stdin ends, exits 0
//	sleep …      runs until a signal (exit 128+signal) or the machine stops
//	serve ARGS…  writes ARGS and a newline as echo does, then runs as sleep does
//
// Any other command fails as a missing one does (agentproto.CodeCommandNotFound).
//
//	hv := vmtest.New()
//	e, _ := engine.Open(ctx, engine.Config{Hypervisor: hv, Images: store, …})
package vmtest

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
)

// Hypervisor starts in-memory machines.
type Hypervisor struct {
	mu     sync.Mutex // guards starts
	starts int
}

var _ vm.Hypervisor = (*Hypervisor)(nil)

// New returns a Hypervisor.
func New() *Hypervisor { return &Hypervisor{} }

// Name implements vm.Hypervisor.
func (h *Hypervisor) Name() string { return "vmtest" }

// Starts is how many machines have been started.
func (h *Hypervisor) Starts() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.starts
}

// Start implements vm.Hypervisor: the machine runs at once.
func (h *Hypervisor) Start(ctx context.Context, spec vm.MachineSpec) (vm.Machine, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.starts++
	h.mu.Unlock()
	return &Machine{id: spec.ID, state: vm.StateRunning, done: make(chan struct{}), stop: make(chan struct{})}, nil
}

// Machine is one in-memory machine and its agent.
type Machine struct {
	id   string
	done chan struct{} // closed once stopped
	stop chan struct{} // closed by Stop: ends every stream

	mu       sync.Mutex // guards the fields below
	state    vm.State
	workload *process // the Run process, once started
	conns    []net.Conn
	ops      []string // every request's operation, in order
}

var _ vm.Machine = (*Machine)(nil)

// Dial implements vm.Machine: a new stream to the agent.
func (m *Machine) Dial(ctx context.Context) (net.Conn, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state == vm.StateStopped {
		return nil, fmt.Errorf("machine %s: %w", m.id, vm.ErrNotRunning)
	}
	host, guest := net.Pipe()
	m.conns = append(m.conns, host, guest)
	go m.serve(guest)
	return host, nil
}

// Stop implements vm.Machine: every stream ends and the workload with them.
func (m *Machine) Stop(ctx context.Context, force bool) error {
	m.mu.Lock()
	if m.state == vm.StateStopped {
		m.mu.Unlock()
		return nil
	}
	m.state = vm.StateStopped
	conns := m.conns
	m.conns = nil
	m.mu.Unlock()
	close(m.stop)
	for _, c := range conns {
		c.Close()
	}
	close(m.done)
	return nil
}

// Pause implements vm.Machine.
func (m *Machine) Pause(ctx context.Context) error {
	return m.setState(vm.StateRunning, vm.StatePaused)
}

// Resume implements vm.Machine.
func (m *Machine) Resume(ctx context.Context) error {
	return m.setState(vm.StatePaused, vm.StateRunning)
}

func (m *Machine) setState(from, to vm.State) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state != from {
		return fmt.Errorf("machine %s is %s: %w", m.id, m.state, vm.ErrNotRunning)
	}
	m.state = to
	return nil
}

// State implements vm.Machine.
func (m *Machine) State() vm.State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state
}

// Ops are the operations the agent was asked for, in order.
func (m *Machine) Ops() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.ops...)
}

// Done implements vm.Machine.
func (m *Machine) Done() <-chan struct{} { return m.done }

// Err implements vm.Machine: an in-memory machine never fails.
func (m *Machine) Err() error { return nil }

// serve answers one stream as the agent does: hello, a request, its answer.
func (m *Machine) serve(nc net.Conn) {
	defer nc.Close()
	c := agentproto.NewConn(nc)
	if err := agentproto.ServerHello(c, agentproto.Info{AgentVersion: "vmtest", Arch: vm.HostArch(), Hostname: m.id}); err != nil {
		return
	}
	msg, err := c.Recv()
	if err != nil {
		return
	}
	req, ok := msg.(agentproto.Request)
	if !ok {
		c.Send(agentproto.ErrorMessage(fmt.Errorf("got %s, want a request: %w", msg.Type(), agentproto.ErrBadRequest)))
		return
	}
	m.mu.Lock()
	m.ops = append(m.ops, req.Op)
	m.mu.Unlock()
	switch req.Op {
	case agentproto.OpInfo, agentproto.OpSetTime, agentproto.OpMount, agentproto.OpUnmount, agentproto.OpTouch:
		c.Send(agentproto.OK{})
	case agentproto.OpStats:
		c.Send(agentproto.OK{Stats: &agentproto.Stats{Time: time.Now(), MemoryUsage: 1 << 20, MemoryLimit: 512 << 20, PIDs: 1, CPUs: 1}})
	case agentproto.OpShutdown:
		c.Send(agentproto.OK{})
		go m.Stop(context.Background(), false)
	case agentproto.OpSignal:
		m.mu.Lock()
		p := m.workload
		m.mu.Unlock()
		if p == nil {
			c.Send(agentproto.ErrorMessage(agentproto.ErrNotRunning))
			return
		}
		p.signal(req.Signal)
		c.Send(agentproto.OK{})
	case agentproto.OpRun, agentproto.OpExec:
		m.run(c, req)
	default:
		c.Send(agentproto.ErrorMessage(fmt.Errorf("%q: %w", req.Op, agentproto.ErrUnknownOperation)))
	}
}

// process is a scripted workload or exec.
type process struct {
	signals chan int
}

func (p *process) signal(sig int) {
	select {
	case p.signals <- sig:
	default:
	}
}

// run plays the script of req.Process on stream c.
func (m *Machine) run(c *agentproto.Conn, req agentproto.Request) {
	if req.Process == nil || len(req.Process.Args) == 0 {
		c.Send(agentproto.ErrorMessage(fmt.Errorf("no command: %w", agentproto.ErrBadRequest)))
		return
	}
	args := req.Process.Args
	switch args[0] {
	case "echo", "exit", "cat", "sleep", "serve":
	default:
		c.Send(agentproto.ErrorMessage(fmt.Errorf("%q: %w", args[0], agentproto.ErrCommandNotFound)))
		return
	}
	p := &process{signals: make(chan int, 4)}
	if req.Op == agentproto.OpRun {
		m.mu.Lock()
		m.workload = p
		m.mu.Unlock()
	}
	if err := c.Send(agentproto.OK{PID: 1}); err != nil {
		return
	}
	// The host's frames: signals and stdin, read until the stream ends.
	stdin := make(chan []byte, 16)
	go func() {
		defer close(stdin)
		for {
			msg, err := c.Recv()
			if err != nil {
				return
			}
			switch v := msg.(type) {
			case agentproto.Signal:
				p.signal(v.Signal)
			case agentproto.Stdin:
				stdin <- append([]byte(nil), v...)
			case agentproto.StdinEOF:
				stdin <- nil
			}
		}
	}()
	code := 0
	switch args[0] {
	case "echo":
		c.Send(agentproto.Stdout(strings.Join(args[1:], " ") + "\n"))
	case "exit":
		if len(args) > 1 {
			code, _ = strconv.Atoi(args[1])
		}
	case "cat":
		for b := range stdin {
			if b == nil {
				break
			}
			c.Send(agentproto.Stdout(b))
		}
	case "sleep", "serve":
		if args[0] == "serve" {
			c.Send(agentproto.Stdout(strings.Join(args[1:], " ") + "\n"))
		}
		select {
		case sig := <-p.signals:
			code = 128 + sig
		case <-m.stop:
			return
		}
	}
	c.Send(agentproto.ExitStatus{Code: code})
}
