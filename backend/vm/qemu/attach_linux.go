package qemu

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/backend/vm/internal/proc"
	"github.com/skiff-containers/skiff/backend/vm/internal/usernet"
)

// A machine's own parts on the host, outside qemu's command line: its state dir, console log, pid
// file, qemu's output and its user-space network. launch sets them up before qemu starts; a spare
// (spare_linux.go) gets them from attach when a start adopts it.

// attach gives a spare spec's state dir, console log, pid file, qemu.log
// and network.
func (m *qemuMachine) attach(spec vm.MachineSpec) error {
	m.spec = spec
	m.log = m.h.log.With(zap.String("vm", spec.ID))
	if err := m.prepareStateDir(); err != nil {
		return err
	}
	if err := m.openConsole(); err != nil {
		return err
	}
	if err := proc.WritePidFile(spec.StateDir, "qemu", m.cmd.Process.Pid); err != nil {
		return fmt.Errorf("the spare's qemu: %w", err)
	}
	if err := m.qemuOut.attach(filepath.Join(spec.StateDir, "qemu.log")); err != nil {
		return err
	}
	return m.startNet()
}

// prepareStateDir makes the machine's state dir and kills what a crashed
// run left in it.
func (m *qemuMachine) prepareStateDir() error {
	if err := os.MkdirAll(m.spec.StateDir, 0o755); err != nil {
		return fmt.Errorf("starting %q: state dir: %w", m.spec.ID, err)
	}
	proc.KillStale(m.spec.StateDir, m.h.log)
	return nil
}

// openConsole opens the machine's console log and starts the pump that
// writes what the guest's serial port sends into it.
func (m *qemuMachine) openConsole() error {
	consoleLog := m.spec.ConsoleLog
	if consoleLog == "" {
		consoleLog = filepath.Join(m.spec.StateDir, "console.log")
	}
	if abs, err := filepath.Abs(consoleLog); err == nil {
		consoleLog = abs
	}
	console, err := vm.OpenConsoleFile(consoleLog, m.h.consoleMax)
	if err != nil {
		return fmt.Errorf("console log: %w", err)
	}
	m.consoleLog, m.console = consoleLog, console
	go func() {
		console.CopyFrom(m.conConn)
		close(m.consoleEnd)
	}()
	return nil
}

// endConsole ends the console of a machine whose qemu is gone (or never
// ran): the pump writes what is left, or, with no console log yet (a
// spare), the socket is closed.
func (m *qemuMachine) endConsole() {
	if m.console == nil {
		if m.conConn != nil {
			m.conConn.Close()
		}
		return
	}
	if m.cmd == nil {
		m.conConn.Close() // ends the pump, which closes the console file
	}
	m.waitConsole()
}

// qemuLog is the end of what qemu wrote on its stdout and stderr.
func (m *qemuMachine) qemuLog() string {
	if s, ok := m.qemuOut.held(); ok {
		return s
	}
	return readSmall(filepath.Join(m.spec.StateDir, "qemu.log"))
}

// netLink returns the file qemu gets on fdNet: its end of the network's
// socket (ours is kept in netEnd for startNet), or /dev/null without a
// network.
func (m *qemuMachine) netLink() (*os.File, error) {
	if m.spec.Network.Mode == vm.NetworkNone {
		return os.Open(os.DevNull)
	}
	ours, theirs, err := socketPair("net")
	if err != nil {
		return nil, err
	}
	m.netEnd = ours
	return theirs, nil
}

// startNet starts the machine's user-space network (none for
// NetworkNone) on our end of qemu's network socket.
func (m *qemuMachine) startNet() error {
	if m.netEnd == nil {
		return nil
	}
	n, err := usernet.New(vm.NetConfig(m.spec.Network, vm.NetMTU, m.log), m.netEnd)
	m.netEnd = nil // the network owns it, or New closed it
	if err != nil {
		return fmt.Errorf("the VM's network: %w", err)
	}
	m.net = n
	return nil
}

// closeNet ends the machine's network once qemu is gone (or never ran).
func (m *qemuMachine) closeNet() {
	if m.netEnd != nil {
		m.netEnd.Close()
		m.netEnd = nil
	}
	if m.net != nil {
		m.net.Close()
		m.log.Debug("network ended", zap.Any("link", m.net.Stats()))
	}
}

// waitConsole waits (briefly: qemu has exited, its end of the console is
// closed) for the console pump to write what qemu sent last.
func (m *qemuMachine) waitConsole() {
	select {
	case <-m.consoleEnd:
	case <-time.After(vm.ConsoleWait):
		m.log.Warn("the console log is still being written after qemu exited")
	}
}

// qemuOutput is a spare's qemu output: kept in memory (its last 64 KiB)
// until attach writes it to the VM's qemu.log, which then gets the rest.
// Only the spare's own exec pipe writes to it.
type qemuOutput struct {
	mu   sync.Mutex
	hold bool // a spare's, not attached: the output is in buf
	buf  []byte
	f    *os.File
}

const qemuOutputMax = 64 << 10

func (o *qemuOutput) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f != nil {
		return o.f.Write(b)
	}
	o.buf = append(o.buf, b...)
	if len(o.buf) > qemuOutputMax {
		o.buf = o.buf[len(o.buf)-qemuOutputMax:]
	}
	return len(b), nil
}

// held is what a spare's qemu wrote while it is not attached; false once
// it is, or for a qemu writing to its qemu.log directly.
func (o *qemuOutput) held() (string, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.hold {
		return "", false
	}
	b := o.buf
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b), true
}

// attach writes what qemu wrote so far to path and the rest from now on.
func (o *qemuOutput) attach(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, err := f.Write(o.buf); err != nil {
		f.Close()
		return err
	}
	o.f, o.buf, o.hold = f, nil, false
	return nil
}

// close closes the qemu.log once qemu has exited.
func (o *qemuOutput) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f != nil {
		o.f.Close()
		o.f = nil
	}
}
