package vm

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/hashicorp/yamux"
	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/vm/internal/proc"
)

// boot starts a machine cold: launch, then serve.
func (h *qemuHypervisor) boot(ctx context.Context, spec MachineSpec, accel string) (*qemuMachine, error) {
	m, agentConn, err := h.launch(ctx, spec, accel, layout{})
	if err != nil {
		return nil, err
	}
	if err := m.serve(agentConn); err != nil {
		m.abort(agentConn)
		return nil, fmt.Errorf("starting %q: %w", spec.ID, err)
	}
	return m, nil
}

// launch starts virtiofsd for each share, then qemu with lo's layout, and
// connects QMP. extra are the files qemu gets after the shares' (a
// snapshot layout's RAM, an incoming one's device state). The agent
// channel is returned unused. On error nothing is left running.
func (h *qemuHypervisor) launch(ctx context.Context, spec MachineSpec, accel string, lo layout, extra ...*os.File) (m *qemuMachine, agentConn net.Conn, err error) {
	if err := os.MkdirAll(spec.StateDir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("starting %q: state dir: %w", spec.ID, err)
	}
	proc.KillStale(spec.StateDir, h.log)
	consoleLog := spec.ConsoleLog
	if consoleLog == "" {
		consoleLog = filepath.Join(spec.StateDir, "console.log")
	}
	if abs, err := filepath.Abs(consoleLog); err == nil {
		consoleLog = abs
	}
	if f, err := os.OpenFile(consoleLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		return nil, nil, fmt.Errorf("starting %q: console log: %w", spec.ID, err)
	} else {
		f.Close()
	}
	m = &qemuMachine{spec: spec, log: h.log.With(zap.String("vm", spec.ID)), consoleLog: consoleLog,
		ready: make(chan struct{}), exited: make(chan error, 1), reqs: make(chan func()),
		done: make(chan struct{}), state: StateStarting, fsdDied: make(chan string, len(spec.Shares))}

	var files []*os.File     // the children's ends, closed once they started
	var ac, qmpConn net.Conn // the agent channel, QMP
	defer func() {
		for _, f := range files {
			f.Close()
		}
		if err != nil {
			if ac != nil {
				ac.Close()
			}
			if qmpConn != nil {
				qmpConn.Close()
			}
			if m.cmd != nil {
				m.cmd.Process.Kill()
				<-m.exited // the waiter goroutine reaps it
			}
			m.killDaemons()
			m.removeStateFiles()
			err = fmt.Errorf("starting %q: %w", spec.ID, err)
			m, agentConn = nil, nil
		}
	}()

	ac, agentFile, err := socketPair("agent")
	if err != nil {
		return m, nil, err
	}
	files = append(files, agentFile)
	qmpConn, qmpFile, err := socketPair("qmp")
	if err != nil {
		return m, nil, err
	}
	files = append(files, qmpFile)
	for _, sh := range spec.Shares {
		fsd, cli, err := h.startVirtiofsd(sh, spec.StateDir)
		if err != nil {
			return m, nil, err
		}
		d := &daemon{tag: sh.Tag, cmd: fsd, done: make(chan struct{})}
		m.fsds = append(m.fsds, d)
		go m.watchDaemon(d)
		files = append(files, cli)
	}
	files = append(files, extra...) // the caller's to close: dropped before the deferred close
	defer func() { files = files[:len(files)-len(extra)] }()

	qlog, err := os.OpenFile(filepath.Join(spec.StateDir, "qemu.log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return m, nil, err
	}
	defer qlog.Close()
	cmd := exec.Command(h.bins[spec.Arch], qemuArgs(spec, accel, consoleLog, lo)...)
	cmd.ExtraFiles = files
	cmd.Stdout, cmd.Stderr = qlog, qlog
	m.log.Debug("starting qemu", zap.Strings("argv", cmd.Args))
	if err := h.spawn.Start(cmd); err != nil {
		return m, nil, fmt.Errorf("running %s: %w", cmd.Path, err)
	}
	m.cmd = cmd // from here on only the waiter calls cmd.Wait
	go func() { m.exited <- cmd.Wait() }()
	if err := proc.WritePidFile(spec.StateDir, "qemu", cmd.Process.Pid); err != nil {
		return m, nil, fmt.Errorf("qemu exited at once: %s", readSmall(qlog.Name()))
	}

	// QMP greets as soon as qemu parsed its arguments; a bad argument exits instead.
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	type qres struct {
		q   *qmp
		err error
	}
	qc := make(chan qres, 1)
	go func() { q, err := newQMP(qctx, qmpConn); qc <- qres{q, err} }()
	select {
	case r := <-qc:
		if r.err != nil {
			return m, nil, fmt.Errorf("qmp: %w: %s", r.err, readSmall(qlog.Name()))
		}
		m.qmp = r.q
	case werr := <-m.exited:
		m.exited <- werr
		return m, nil, fmt.Errorf("qemu exited (%v): %s", werr, readSmall(qlog.Name()))
	}

	return m, ac, nil
}

// serve starts the yamux session on the agent channel and hands the
// machine to its loop.
func (m *qemuMachine) serve(agentConn net.Conn) error {
	cfg := yamux.DefaultConfig()
	cfg.EnableKeepAlive = false              // a paused guest cannot answer
	cfg.ConnectionWriteTimeout = time.Minute // a slow TCG guest is not a broken one
	cfg.StreamOpenTimeout = 0
	cfg.MaxStreamWindowSize = 16 << 20 // what the agent may send ahead: 256 KiB halved a port forward's throughput under TCG
	cfg.LogOutput = io.Discard
	var err error
	if m.sess, err = yamux.Client(agentConn, cfg); err != nil {
		return fmt.Errorf("agent channel: %w", err)
	}
	m.setState(StateRunning)
	go m.waitReady()
	go m.loop()
	return nil
}

// abort kills a launched machine that never reached serve and cleans up
// after it.
func (m *qemuMachine) abort(agentConn net.Conn) {
	agentConn.Close()
	m.qmp.close()
	m.kill()
	<-m.exited
	m.killDaemons()
	m.removeStateFiles()
}

// waitReady pings the agent until it answers. Pings sent before the guest
// opened its port wait in the socket and are answered then; one more goes out
// every second in case the guest dropped one (e.g. while it reopened the port).
func (m *qemuMachine) waitReady() {
	ok := make(chan struct{}, 1)
	ping := func() {
		if _, err := m.sess.Ping(); err == nil {
			select {
			case ok <- struct{}{}:
			default:
			}
		}
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	go ping()
	for {
		select {
		case <-ok:
			close(m.ready)
			return
		case <-tick.C:
			go ping()
		case <-m.done:
			return
		case <-m.sess.CloseChan():
			return
		}
	}
}
