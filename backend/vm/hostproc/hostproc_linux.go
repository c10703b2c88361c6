package hostproc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/backend/vm/agentbin"
	"github.com/skiff-containers/skiff/backend/vm/internal/proc"
)

// Options configure the host-process backend.
type Options struct {
	Log *zap.Logger
	// Agent is the skiff-agent binary to run; empty uses the embedded agent for
	// the host arch (written into each machine's state dir).
	Agent string
}

type hypervisor struct {
	log   *zap.Logger
	agent string
	spawn *proc.Spawner
}

var _ vm.Hypervisor = (*hypervisor)(nil)

// New returns the host-process backend.
func New(opts Options) (vm.Hypervisor, error) {
	log := opts.Log
	if log == nil {
		log = zap.NewNop()
	}
	if opts.Agent == "" {
		if _, err := agentbin.Agent(vm.HostArch()); err != nil {
			return nil, fmt.Errorf("hostproc: %w", err)
		}
	} else if _, err := os.Stat(opts.Agent); err != nil {
		return nil, fmt.Errorf("hostproc: agent binary: %w", err)
	}
	return &hypervisor{log: log, agent: opts.Agent, spawn: proc.NewSpawner()}, nil
}

func (h *hypervisor) Name() string { return "hostproc" }

// Start runs the agent with the share tagged rootfs (or, for a root on disks, the image disk
// extracted into a directory: DiskRoot) as --root and every other
// share as --share tag=path. CPUs, memory, kernel,
// initramfs and network are ignored: the agent shares the host's.
func (h *hypervisor) Start(ctx context.Context, spec vm.MachineSpec) (vm.Machine, error) {
	if spec.ID == "" || spec.StateDir == "" {
		return nil, fmt.Errorf("hostproc: machine spec needs ID and StateDir: %w", vm.ErrInvalidSpec)
	}
	var root string
	if spec.Boot.Root == agentproto.RootFromDisks {
		r, err := diskRoot(spec)
		if err != nil {
			return nil, err
		}
		root = r
	}
	var shareArgs []string
	for _, sh := range spec.Shares {
		if sh.Tag == vm.RootShareTag {
			root = sh.HostPath
			continue
		}
		// In host mode a share is read-only only where it is mounted with
		// MountSpec.ReadOnly: there is no daemon in between to refuse writes.
		shareArgs = append(shareArgs, "--share", sh.Tag+"="+sh.HostPath)
	}
	if root == "" {
		return nil, fmt.Errorf("hostproc: machine %q has no share tagged %q: %w", spec.ID, vm.RootShareTag, vm.ErrInvalidSpec)
	}
	if err := os.MkdirAll(spec.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("hostproc: state dir: %w", err)
	}
	proc.KillStale(spec.StateDir, h.log)
	bin := h.agent
	if bin == "" {
		data, err := agentbin.Agent(vm.HostArch())
		if err != nil {
			return nil, fmt.Errorf("hostproc: %w", err)
		}
		bin = filepath.Join(spec.StateDir, "skiff-agent")
		if err := os.WriteFile(bin+".tmp", data, 0o755); err != nil {
			return nil, fmt.Errorf("hostproc: %w", err)
		}
		if err := os.Rename(bin+".tmp", bin); err != nil {
			return nil, fmt.Errorf("hostproc: %w", err)
		}
	}
	// An abstract socket: no path-length limit, nothing left in the file system.
	var rnd [12]byte
	rand.Read(rnd[:])
	addr := "@skiff-hostproc-" + hex.EncodeToString(rnd[:])

	logPath := spec.ConsoleLog
	if logPath == "" {
		logPath = filepath.Join(spec.StateDir, "console.log")
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("hostproc: console log: %w", err)
	}
	defer logf.Close()
	args := append([]string{"--listen", "unix:" + addr, "--root", root}, shareArgs...)
	var cmd *exec.Cmd
	for try := 0; ; try++ {
		cmd = exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.Dir = spec.StateDir
		err = h.spawn.Start(cmd)
		// ETXTBSY: a fork elsewhere in this process (another VM's start) happened while the
		// agent binary was open for writing, and its child holds that descriptor until it
		// execs. It lets go within moments.
		if err == nil || !errors.Is(err, syscall.ETXTBSY) || try == 20 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("hostproc: starting %s: %w", bin, err)
	}
	m := &machine{spec: spec, log: h.log.With(zap.String("vm", spec.ID)), addr: addr, cmd: cmd,
		logPath: logPath, done: make(chan struct{}), state: vm.StateRunning}
	if err := proc.WritePidFile(spec.StateDir, "agent", cmd.Process.Pid); err != nil {
		m.log.Debug("pid file", zap.Error(err))
	}
	go m.wait()
	return m, nil
}

// machine is one agent process. wait owns the end of its life; mu guards
// the fields below it.
type machine struct {
	spec    vm.MachineSpec
	log     *zap.Logger
	addr    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}

	mu       sync.Mutex
	state    vm.State
	err      error
	stopping bool
}

func (m *machine) wait() {
	werr := m.cmd.Wait()
	// The agent may leave workload processes behind if it was killed.
	for _, p := range proc.Descendants(m.cmd.Process.Pid) {
		syscall.Kill(p, syscall.SIGKILL)
	}
	os.Remove(filepath.Join(m.spec.StateDir, "agent.pid"))
	m.mu.Lock()
	switch {
	case m.stopping || werr == nil:
		m.state = vm.StateStopped
	default:
		m.state = vm.StateFailed
		m.err = fmt.Errorf("machine %q failed: agent exited: %v; its log %s ends:\n%s",
			m.spec.ID, werr, m.logPath, vm.ConsoleTail(m.logPath, 15))
	}
	m.mu.Unlock()
	close(m.done)
}

func (m *machine) State() vm.State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state
}

func (m *machine) Done() <-chan struct{} { return m.done }

func (m *machine) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// Dial connects to the agent, retrying until it listens or ctx ends.
func (m *machine) Dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	for {
		select {
		case <-m.done:
			return nil, fmt.Errorf("dialing agent of %q: %w", m.spec.ID, vm.ErrNotRunning)
		default:
		}
		c, err := d.DialContext(ctx, "unix", m.addr)
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("dialing agent of %q: %w (last: %v)", m.spec.ID, ctx.Err(), err)
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
		case <-m.done:
		}
	}
}

func (m *machine) Pause(ctx context.Context) error {
	return m.signal(vm.StateRunning, vm.StatePaused, syscall.SIGSTOP)
}
func (m *machine) Resume(ctx context.Context) error {
	return m.signal(vm.StatePaused, vm.StateRunning, syscall.SIGCONT)
}

func (m *machine) signal(from, to vm.State, sig syscall.Signal) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state == to {
		return nil
	}
	if m.state != from {
		return fmt.Errorf("machine %q is %s: %w", m.spec.ID, m.state, vm.ErrNotRunning)
	}
	if err := proc.SignalTree(m.cmd.Process.Pid, sig); err != nil {
		return fmt.Errorf("machine %q: %v: %w", m.spec.ID, err, vm.ErrNotRunning)
	}
	m.state = to
	return nil
}

// Stop: see vm.Machine. Without force the agent gets SIGTERM (it ends
// serving and exits) and is killed when ctx ends first.
func (m *machine) Stop(ctx context.Context, force bool) error {
	m.mu.Lock()
	if m.state.Terminal() {
		m.mu.Unlock()
		return nil
	}
	paused := m.state == vm.StatePaused
	m.stopping = true
	m.state = vm.StateStopping
	m.mu.Unlock()
	pid := m.cmd.Process.Pid
	if paused {
		proc.SignalTree(pid, syscall.SIGCONT)
	}
	if !force {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-m.done:
			return nil
		case <-ctx.Done():
		}
	}
	proc.SignalTree(pid, syscall.SIGKILL)
	<-m.done
	return nil
}
