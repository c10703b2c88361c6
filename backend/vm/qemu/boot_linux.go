package qemu

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/yamux"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/shmring"
	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/backend/vm/internal/proc"
)

// boot starts a machine cold: launch, then serve.
func (h *qemuHypervisor) boot(ctx context.Context, spec vm.MachineSpec, accel string) (*qemuMachine, error) {
	lo := layout{tune: h.delayArgs(spec, accel), firmware: h.coldFirmware(spec.Arch, accel)}
	m, agentConn, err := h.launch(ctx, spec, accel, lo)
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
//
// A spare (lo.spare, spare_linux.go) is launched for no VM yet: it gets no
// state dir, console log, pid file or network until attach gives it a
// VM's; its qemu output is kept in memory until then.
func (h *qemuHypervisor) launch(ctx context.Context, spec vm.MachineSpec, accel string, lo layout, extra ...*os.File) (m *qemuMachine, agentConn net.Conn, err error) {
	m = &qemuMachine{h: h, spec: spec, log: h.log.With(zap.String("vm", spec.ID)),
		consoleEnd: make(chan struct{}), qemuOut: &qemuOutput{},
		ready: make(chan struct{}), exited: make(chan error, 1), reqs: make(chan func()),
		done: make(chan struct{}), state: vm.StateStarting, changed: make(chan struct{}), fsdDied: make(chan string, len(spec.Shares)+hotplugPorts)}
	if !lo.spare {
		if err := m.prepareStateDir(); err != nil {
			return nil, nil, err
		}
	}

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
			m.endConsole()
			m.killDaemons()
			m.closeNet()
			m.removeStateFiles()
			m.unmapRing()
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
	lo.ring = h.ringFor(spec)
	size := int64(0)
	if lo.ring {
		size = ringSize
	}
	ring, err := newMemfd("skiff-agent-ring", size)
	if err != nil {
		return m, nil, fmt.Errorf("the agent channel's ring: %w", err)
	}
	files = append(files, ring)
	conConn, conFile, err := socketPair("console")
	if err != nil {
		return m, nil, err
	}
	m.conConn = conConn
	files = append(files, conFile)
	if !lo.spare {
		if err := m.openConsole(); err != nil {
			return m, nil, err
		}
	}
	if lo.ring {
		if m.ring, err = unix.Mmap(int(ring.Fd()), 0, ringSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != nil {
			return m, nil, fmt.Errorf("the agent channel's ring: %w", err)
		}
	}
	netFile, err := m.netLink()
	if err != nil {
		return m, nil, err
	}
	files = append(files, netFile)
	if !lo.spare {
		if err := m.startNet(); err != nil {
			return m, nil, err
		}
	}
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

	cmd := exec.Command(h.bins[spec.Arch], qemuArgs(spec, accel, lo)...)
	cmd.ExtraFiles = files
	if lo.spare {
		m.qemuOut.hold = true
		cmd.Stdout, cmd.Stderr = m.qemuOut, m.qemuOut // a pipe: kept in memory until attach
	} else {
		qlog, err := os.OpenFile(filepath.Join(spec.StateDir, "qemu.log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return m, nil, err
		}
		defer qlog.Close()
		cmd.Stdout, cmd.Stderr = qlog, qlog
	}
	m.log.Debug("starting qemu", zap.Strings("argv", cmd.Args))
	if err := h.spawn.Start(cmd); err != nil {
		return m, nil, fmt.Errorf("running %s: %w", cmd.Path, err)
	}
	m.cmd = cmd // from here on only the waiter calls cmd.Wait
	go func() { m.exited <- cmd.Wait() }()
	if !lo.spare {
		if err := proc.WritePidFile(spec.StateDir, "qemu", cmd.Process.Pid); err != nil {
			return m, nil, fmt.Errorf("qemu exited at once: %s", m.qemuLog())
		}
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
			return m, nil, fmt.Errorf("qmp: %w: %s", r.err, m.qemuLog())
		}
		m.qmp = r.q
	case werr := <-m.exited:
		m.exited <- werr
		return m, nil, fmt.Errorf("qemu exited (%v): %s", werr, m.qemuLog())
	}

	return m, ac, nil
}

// serve hands the machine to its loop and connects to the agent in the
// background (connect).
func (m *qemuMachine) serve(agentConn net.Conn) error {
	m.agentConn = agentConn
	m.setState(vm.StateRunning)
	go m.connect(m.ring) // loop's finish unmaps m.ring and clears the field
	go m.loop()
	return nil
}

// connect starts the yamux session to the agent: on the shared-memory ring
// when the machine has one and the agent's first line takes it (the
// virtio-serial port then carries only the ring's wake-ups), else on the
// port. An agent that wrote that line serves its yamux session right after:
// the machine is ready at once, and the first stream's request is the first
// round trip. Without a ring there is no line, and the machine is ready once
// the agent answers a ping. mem is the ring's memory, nil without one.
func (m *qemuMachine) connect(mem []byte) {
	var rw io.ReadWriteCloser = m.agentConn
	var ring *shmring.Conn
	if mem != nil {
		line, err := readLine(m.agentConn, 4096)
		switch {
		case err != nil:
			return // the machine ended before its agent spoke; loop reports why
		case line == agentproto.RingOK:
			if ring, err = shmring.New(mem, shmring.Host, m.agentConn, nil); err != nil {
				m.log.Error("agent channel", zap.Error(err))
				m.kill()
				return
			}
			rw = ring
		case strings.HasPrefix(line, agentproto.RingOff):
			m.log.Warn("the agent channel stays on the serial port", zap.String("why", strings.TrimPrefix(line, agentproto.RingOff)))
		default:
			m.log.Error("agent channel: unexpected first line", zap.String("line", line))
			m.kill()
			return
		}
	}
	cfg := yamux.DefaultConfig()
	cfg.EnableKeepAlive = false              // a paused guest cannot answer
	cfg.ConnectionWriteTimeout = time.Minute // a slow TCG guest is not a broken one
	// No StreamOpenTimeout: at its end yamux closes the whole session, and a
	// guest paused just after a stream was opened would lose its channel (the
	// container its workload) once paused that long. What bounds a wait on a
	// silent agent is each Dial's and each request's context, and the engine
	// kills a VM whose agent leaves a request unanswered (engine.ErrUnresponsive).
	cfg.StreamOpenTimeout = 0
	cfg.MaxStreamWindowSize = 16 << 20 // what the agent may send ahead: 256 KiB halved a port forward's throughput under TCG
	cfg.LogOutput = io.Discard
	m.mu.Lock()
	if m.ended { // finish ran: the ring may be unmapped
		m.mu.Unlock()
		return
	}
	sess, err := yamux.Client(rw, cfg)
	m.sess, m.ringConn = sess, ring
	m.mu.Unlock()
	if err != nil {
		m.log.Error("agent channel", zap.Error(err))
		m.kill()
		return
	}
	if mem != nil {
		close(m.ready)
		return
	}
	m.waitReady(sess)
}

// closeChannel ends the agent session and the channel under it and unmaps
// the ring; connect starts nothing after it.
func (m *qemuMachine) closeChannel() {
	m.mu.Lock()
	m.ended = true
	sess, ring := m.sess, m.ringConn
	m.mu.Unlock()
	if sess != nil {
		sess.Close() // closes the ring: no access to its memory after this
	}
	if ring != nil {
		m.log.Debug("agent channel ring", zap.Any("stats", ring.Stats()))
	}
	if m.agentConn != nil {
		m.agentConn.Close()
	}
	m.unmapRing()
}

func (m *qemuMachine) unmapRing() {
	if m.ring != nil {
		_ = unix.Munmap(m.ring)
		m.ring = nil
	}
}

// abort kills a launched machine that never reached serve and cleans up
// after it.
func (m *qemuMachine) abort(agentConn net.Conn) {
	agentConn.Close()
	m.qmp.close()
	m.kill()
	<-m.exited
	m.endConsole()
	m.qemuOut.close()
	m.killDaemons()
	m.closeNet()
	m.removeStateFiles()
	m.unmapRing()
}

// waitReady pings the agent until it answers. Pings sent before the guest
// opened its port wait in the socket and are answered then; one more goes out
// every second in case the guest dropped one (e.g. while it reopened the port).
func (m *qemuMachine) waitReady(sess *yamux.Session) {
	ok := make(chan struct{}, 1)
	ping := func() {
		if _, err := sess.Ping(); err == nil {
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
		case <-sess.CloseChan():
			return
		}
	}
}

// DescribeChannel says which transport the agent channel is on and, on the ring, what the host's
// end counted (calls, sleeps, wake-ups sent and read): a stalled channel shows whether a wake-up
// went missing. See ChannelDescriber.
func (m *qemuMachine) DescribeChannel() string {
	m.mu.Lock()
	sess, ring := m.sess, m.ringConn
	m.mu.Unlock()
	switch {
	case sess == nil:
		return "agent channel: not connected"
	case ring == nil:
		return "agent channel: the virtio-serial port"
	}
	s := ring.Stats()
	return fmt.Sprintf("agent channel: the shared-memory ring (host end: %d reads, %d writes, %d read waits, %d write waits, %d wake-ups sent, %d read)",
		s.Reads, s.Writes, s.ReadWaits, s.WriteWaits, s.KicksSent, s.KicksRead)
}
