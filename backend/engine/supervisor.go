package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
)

// Timeouts of the boot sequence. A TCG boot takes 2-3 s; a loaded CI machine can take much longer.
const (
	agentTimeout    = 90 * time.Second // VM start until the agent answers
	shutdownTimeout = 10 * time.Second // agent shutdown + power-off before the VM is killed
	defaultStop     = 10 * time.Second
	minBackoff      = 100 * time.Millisecond
	maxBackoff      = time.Minute
	backoffReset    = 10 * time.Second // a run this long resets the backoff
)

// Start starts a created or exited container: binds its ports, boots its VM, starts the workload
// and hands it to a supervisor goroutine. It returns once the workload runs (or failed to start:
// a missing command wraps agentproto.ErrCommandNotFound). Starting a running container is a no-op.
func (e *Engine) Start(ctx context.Context, id string) error {
	c, err := e.lookup(id)
	if err != nil {
		return err
	}
	return c.start(ctx, false)
}

// start begins a supervisor. fromPolicy: started by the engine (reconcile), which keeps RestartCount.
func (c *ctr) start(ctx context.Context, fromPolicy bool) error {
	c.mu.Lock()
	for c.sup != nil && c.rec.State == StateExited {
		// The last run has exited and its VM is being powered off: start after that.
		done := c.sup.done
		c.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
		c.mu.Lock()
	}
	if c.sup != nil {
		c.mu.Unlock()
		return nil
	}
	switch c.rec.State {
	case StateCreated, StateExited:
	case StateRestarting: // a restart scheduled by a previous engine: start it now
	default:
		st := c.rec.State
		c.mu.Unlock()
		return fmt.Errorf("container %s is %s and cannot be started: %w", c.rec.Name, st, ErrConflict)
	}
	if c.removing {
		c.mu.Unlock()
		return fmt.Errorf("container %s is being removed: %w", c.rec.Name, ErrConflict)
	}
	ports := append([]PortMapping(nil), c.rec.Config.Ports...)
	sctx, cancel := context.WithCancel(c.e.ctx)
	s := &supervisor{ctx: sctx, cancel: cancel, done: make(chan struct{})}
	c.sup = s // claims the container: a concurrent Start is a no-op
	c.mu.Unlock()

	fail := func(err error) error {
		for _, ln := range s.listeners {
			ln.Close()
		}
		cancel()
		c.mu.Lock()
		c.sup = nil
		c.rec.Error = err.Error()
		c.rec.ExitCode = exitCodeFor(err)
		c.saveLocked()
		close(c.exitCh) // a Wait for this run gets the failure's code
		c.exitCh = make(chan struct{})
		close(s.done)
		c.mu.Unlock()
		c.e.emit("container", "die", c.rec.ID, c.rec.Name, map[string]string{"exitCode": strconv.Itoa(exitCodeFor(err)), "error": err.Error()})
		return err
	}
	lns, bound, err := listenPorts(ports)
	if err != nil {
		return fail(fmt.Errorf("starting %s: %w", c.rec.Name, err))
	}
	s.listeners = lns
	// A Stop or Remove while booting cancels the boot.
	bctx, bcancel := context.WithCancel(ctx)
	unhook := context.AfterFunc(sctx, bcancel)
	b, err := c.boot(bctx)
	unhook()
	bcancel()
	if err != nil {
		return fail(fmt.Errorf("starting %s: %w", c.rec.Name, err))
	}
	c.mu.Lock()
	if s.stopping || sctx.Err() != nil {
		// Stopped just as the boot finished: end the workload; supervise records the exit.
		_ = b.proc.Signal(sigKILL)
	}
	s.boot = b
	c.rec.Ports = bound
	c.rec.Error = ""
	c.rec.ManuallyStopped = false
	c.rec.NextRestart = time.Time{}
	if !fromPolicy {
		c.rec.RestartCount = 0
		c.rec.RestartDelay = 0
	}
	c.rec.StartedAt = b.started
	c.rec.FinishedAt = time.Time{}
	c.rec.ExitCode = 0
	c.setStateLocked(StateRunning)
	c.saveLocked()
	c.mu.Unlock()
	for i, ln := range lns {
		go c.servePort(s, ln, bound[i])
	}
	c.e.emit("container", "start", c.rec.ID, c.rec.Name, nil)
	go c.supervise(s)
	return nil
}

// exitCodeFor maps a start failure to Docker's codes: 127 command not found, 126 not executable,
// 128 anything else.
func exitCodeFor(err error) int {
	switch {
	case errors.Is(err, agentproto.ErrCommandNotFound):
		return 127
	case errors.Is(err, agentproto.ErrCommandNotExecutable):
		return 126
	}
	return 128
}

// machineSpec is the VM description of this container.
func (c *ctr) machineSpec(ctx context.Context) (vm.MachineSpec, error) {
	c.mu.Lock()
	rec := cloneRecord(c.rec)
	c.mu.Unlock()
	e := c.e
	arch := archOf(rec.Platform)
	spec := vm.MachineSpec{
		ID: rec.ID, Arch: arch, CPUs: vmCPUs(rec.Config.CPUs), MemoryMiB: vmMemoryMiB(rec.Config.Memory),
		Cmdline: []string{
			"skiff.hostname=" + rec.Process.Hostname,
			"skiff.time=" + strconv.FormatInt(time.Now().UnixNano(), 10),
		},
		Shares:     []vm.Share{{Tag: vm.RootShareTag, HostPath: rec.RootFS}},
		Network:    vm.Network{Mode: vm.NetworkNAT, MAC: rec.MAC},
		ConsoleLog: e.consolePath(rec.ID),
		StateDir:   e.stateDir(rec.ID),
	}
	for i, m := range rec.Mounts {
		spec.Shares = append(spec.Shares, vm.Share{Tag: mountTag(i), HostPath: m.Source, ReadOnly: m.ReadOnly})
	}
	if e.cfg.Kernel != nil {
		kernel, initrd, err := e.kernelFor(ctx, arch)
		if err != nil {
			return spec, err
		}
		spec.Kernel, spec.Initramfs = kernel, initrd
	}
	return spec, nil
}

// kernelFor returns the kernel image and initramfs for arch, asking Config.Kernel once per arch
// (again only when the files it gave have gone).
func (e *Engine) kernelFor(ctx context.Context, arch string) (string, string, error) {
	e.kmu.Lock()
	defer e.kmu.Unlock()
	if k, ok := e.kernels[arch]; ok {
		_, err1 := os.Stat(k[0])
		_, err2 := os.Stat(k[1])
		if err1 == nil && err2 == nil {
			return k[0], k[1], nil
		}
	}
	b, initrd, err := e.cfg.Kernel(ctx, arch)
	if err != nil {
		return "", "", fmt.Errorf("kernel for %s: %w", arch, err)
	}
	kernel := ""
	if b != nil {
		kernel = b.KernelPath()
	}
	if e.kernels == nil {
		e.kernels = map[string][2]string{}
	}
	e.kernels[arch] = [2]string{kernel, initrd}
	return kernel, initrd, nil
}

func mountTag(i int) string { return "v" + strconv.Itoa(i) }

func archOf(platform string) string {
	switch platform {
	case "linux/arm64", "linux/arm64/v8":
		return "arm64"
	case "linux/amd64":
		return "amd64"
	}
	return vm.HostArch()
}

func vmCPUs(c float64) int {
	if c <= 0 {
		return 1
	}
	return int(math.Ceil(c))
}

func vmMemoryMiB(b int64) int {
	if b <= 0 {
		return 512
	}
	return int(b >> 20)
}

// boot starts the VM, waits for the agent, sets the clock, mounts the binds and starts the workload
// with its output flowing into the log. On failure nothing is left running.
func (c *ctr) boot(ctx context.Context) (b *boot, err error) {
	e := c.e
	if e.hv == nil {
		return nil, fmt.Errorf("engine has no hypervisor: %w", ErrNotSupported)
	}
	tk := time.Now()
	spec, err := c.machineSpec(ctx)
	if err != nil {
		return nil, err
	}
	e.log.Debug("machine spec ready", zapID(spec.ID), zap.Duration("kernel", time.Since(tk)))
	rotateConsole(spec.ConsoleLog)
	if err := os.MkdirAll(spec.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating VM state dir: %w", err)
	}
	t0 := time.Now()
	m, err := e.hv.Start(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("starting VM (%s): %w", e.hv.Name(), err)
	}
	defer func() {
		if err != nil {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
			_ = m.Stop(sctx, true)
			cancel()
		}
	}()
	client := agentproto.NewClient(m.Dial)
	actx, cancel := context.WithTimeout(ctx, agentTimeout)
	defer cancel()
	if _, err := client.Hello(actx); err != nil {
		if merr := m.Err(); merr != nil {
			err = fmt.Errorf("%w (VM: %v)", err, merr)
		}
		return nil, fmt.Errorf("waiting for the guest agent: %w", err)
	}
	e.log.Debug("guest agent up", zapID(spec.ID), zap.Duration("since_vm_start", time.Since(t0)))
	// Best effort: the kernel command line carried the time already, and host-mode agents refuse.
	if err := client.SetTime(actx, time.Now()); err != nil && !errors.Is(err, agentproto.ErrNotSupported) {
		e.log.Warn("setting guest clock", zapID(spec.ID), zapErr(err))
	}
	c.mu.Lock()
	rec := cloneRecord(c.rec)
	rows, cols := c.ttyRows, c.ttyCols
	c.mu.Unlock()
	if rows == 0 || cols == 0 {
		rows, cols = 24, 80
	}
	for i, mt := range rec.Mounts {
		if err := client.Mount(actx, agentproto.MountSpec{Tag: mountTag(i), Target: mt.Target, ReadOnly: mt.ReadOnly}); err != nil {
			return nil, fmt.Errorf("mounting %s at %s: %w", mt.Source, mt.Target, err)
		}
	}
	w, err := c.logs.startWriter(e.log)
	if err != nil {
		return nil, err
	}
	proc, err := client.Run(actx, agentproto.ProcessSpec{
		Args: rec.Process.Args, Env: rec.Process.Env, Cwd: rec.Process.WorkingDir, User: rec.Process.User,
		TTY: rec.Config.TTY, Stdin: rec.Config.OpenStdin, Hostname: rec.Process.Hostname, Rows: rows, Cols: cols,
	})
	if err != nil {
		w.close()
		return nil, fmt.Errorf("running %q: %w", rec.Process.Args, err)
	}
	b = &boot{machine: m, client: client, proc: proc, started: time.Now().UTC(), writer: w}
	b.stats = newStatsSampler(client)
	b.subs.subs = c.attach.take()
	b.pumps.Add(2)
	go c.pump(b, proc.Stdout(), "stdout")
	go c.pump(b, proc.Stderr(), "stderr")
	if rec.Config.OpenStdin {
		go c.stdin.feed(proc)
	}
	stopWatch := c.watchMounts(rec.Mounts, client)
	var once sync.Once
	b.stopWatch = func() { once.Do(stopWatch) }
	return b, nil
}

// supervise owns the container from a successful start until it has exited for good: it waits for
// the workload, tears the VM down, records the exit and applies the restart policy.
func (c *ctr) supervise(s *supervisor) {
	e := c.e
	defer close(s.done)
	for {
		c.mu.Lock()
		b := s.boot
		c.mu.Unlock()
		code, errMsg := c.waitExit(b)
		// Output is flushed to the log before the exit is announced, so Logs after Wait has it all;
		// the VM is powered off after (a Wait does not pay for the shutdown).
		if b.stopWatch != nil {
			b.stopWatch()
		}
		b.writer.close()

		c.mu.Lock()
		s.boot = nil
		now := time.Now().UTC()
		c.rec.FinishedAt = now
		c.rec.ExitCode = code
		c.rec.Error = errMsg
		ran := now.Sub(b.started)
		restart := !s.stopping && s.ctx.Err() == nil &&
			shouldRestart(c.rec.Config.Restart, code, c.rec.RestartCount, c.rec.ManuallyStopped)
		if restart {
			c.rec.RestartDelay = nextBackoff(c.rec.RestartDelay, ran)
			c.rec.NextRestart = now.Add(c.rec.RestartDelay)
			c.setStateLocked(StateRestarting)
		} else {
			c.setStateLocked(StateExited)
		}
		c.saveLocked()
		e.emit("container", "die", c.rec.ID, c.rec.Name, map[string]string{"exitCode": strconv.Itoa(code)})
		close(c.exitCh)
		c.exitCh = make(chan struct{})
		delay := c.rec.RestartDelay
		c.mu.Unlock()
		e.log.Debug("container exited", zapID(c.rec.ID), zap.Int("code", code), zap.Bool("restart", restart))
		if !restart {
			for _, ln := range s.listeners {
				ln.Close()
			}
		}
		c.teardown(b)
		if !restart {
			break
		}
		if !c.restartAfter(s, delay) {
			break
		}
	}
	for _, ln := range s.listeners {
		ln.Close()
	}
	c.mu.Lock()
	c.sup = nil
	autoRemove := c.rec.Config.AutoRemove && !c.removing
	if c.rec.State == StateRestarting { // backoff cut short by stop/remove/close
		c.setStateLocked(StateExited)
		c.rec.NextRestart = time.Time{}
		c.saveLocked()
	}
	c.mu.Unlock()
	if autoRemove && e.ctx.Err() == nil {
		if err := e.removeCtr(context.Background(), c, true); err != nil {
			e.log.Warn("auto-removing container", zapID(c.rec.ID), zapErr(err))
		}
	}
}

// restartAfter waits delay (unless cancelled) and boots again, retrying per policy when the boot
// fails. It reports whether a new boot runs.
func (c *ctr) restartAfter(s *supervisor, delay time.Duration) bool {
	for {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return false
		}
		bctx, cancel := context.WithTimeout(s.ctx, 2*agentTimeout)
		b, err := c.boot(bctx)
		cancel()
		c.mu.Lock()
		c.rec.RestartCount++
		if err == nil && !s.stopping && s.ctx.Err() == nil {
			s.boot = b
			c.rec.StartedAt = b.started
			c.rec.NextRestart = time.Time{}
			c.rec.Error = ""
			c.setStateLocked(StateRunning)
			c.saveLocked()
			c.mu.Unlock()
			c.e.emit("container", "start", c.rec.ID, c.rec.Name, map[string]string{"restartCount": strconv.Itoa(c.rec.RestartCount)})
			return true
		}
		if err == nil { // stopped while booting
			c.mu.Unlock()
			c.teardown(b)
			return false
		}
		code := exitCodeFor(err)
		c.rec.ExitCode, c.rec.Error, c.rec.FinishedAt = code, err.Error(), time.Now().UTC()
		again := s.ctx.Err() == nil && !s.stopping &&
			shouldRestart(c.rec.Config.Restart, code, c.rec.RestartCount, c.rec.ManuallyStopped)
		if again {
			c.rec.RestartDelay = nextBackoff(c.rec.RestartDelay, 0)
			c.rec.NextRestart = time.Now().UTC().Add(c.rec.RestartDelay)
			delay = c.rec.RestartDelay
		}
		c.saveLocked()
		c.mu.Unlock()
		c.e.log.Warn("restarting container failed", zapID(c.rec.ID), zapErr(err))
		if !again {
			return false
		}
	}
}

// waitExit waits for the workload and its output, returning the exit code and, when the stream
// broke instead of reporting a status, why.
func (c *ctr) waitExit(b *boot) (int, string) {
	b.pumps.Wait()
	st, err := b.proc.Wait()
	if err == nil {
		return st.Code, ""
	}
	// The stream broke: the VM died or was powered off.
	select {
	case <-b.machine.Done():
	default:
	}
	msg := err.Error()
	if merr := b.machine.Err(); merr != nil {
		msg = merr.Error()
	}
	return 137, "the VM ended without reporting the workload's exit status: " + msg
}

// teardown ends a boot: stops the watcher, flushes the log, and powers the VM off (agent shutdown,
// then force after shutdownTimeout).
func (c *ctr) teardown(b *boot) {
	if b.stopWatch != nil {
		b.stopWatch()
	}
	b.writer.close()
	b.proc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := b.machine.Stop(ctx, false); err != nil {
		fctx, fcancel := context.WithTimeout(context.Background(), shutdownTimeout)
		_ = b.machine.Stop(fctx, true)
		fcancel()
	}
	c.attach.closeAll()
}

// shouldRestart is Docker's restart decision after an exit.
func shouldRestart(p RestartPolicy, exitCode, restartCount int, manuallyStopped bool) bool {
	if manuallyStopped {
		return false
	}
	switch p.Name {
	case "always", "unless-stopped":
		return true
	case "on-failure":
		return exitCode != 0 && (p.MaximumRetryCount == 0 || restartCount < p.MaximumRetryCount)
	}
	return false
}

// nextBackoff doubles the delay (100 ms, 200 ms, ... up to a minute), starting over after a run
// of at least backoffReset.
func nextBackoff(prev, ran time.Duration) time.Duration {
	if prev <= 0 || ran >= backoffReset {
		return minBackoff
	}
	d := prev * 2
	if d > maxBackoff {
		d = maxBackoff
	}
	return d
}
