package agentproto

import (
	"errors"
	"fmt"
	"io"
	"sync"
)

// Process is a running workload or exec'd process: one stream.
//
// Like os/exec pipes, Stdout and Stderr must be read concurrently (and to
// EOF) while the process runs: an unread stream holds the other one back.
type Process struct {
	conn             *Conn
	pid              int
	op               string
	stdoutR, stderrR *io.PipeReader
	stdoutW, stderrW *io.PipeWriter
	stdin            *stdinWriter
	done             chan struct{} // closed by the reader goroutine once status/err are set
	status           ExitStatus
	err              error
}

func newProcess(conn *Conn, pid int, op string) *Process {
	p := &Process{conn: conn, pid: pid, op: op, done: make(chan struct{}), stdin: &stdinWriter{conn: conn}}
	p.stdoutR, p.stdoutW = io.Pipe()
	p.stderrR, p.stderrW = io.Pipe()
	go p.read()
	return p
}

func (p *Process) read() {
	defer close(p.done)
	defer p.stdoutW.Close()
	defer p.stderrW.Close()
	for {
		m, err := p.conn.Recv()
		if err != nil {
			p.err = fmt.Errorf("agent %s: %w", p.op, eofToClosed(err))
			return
		}
		switch v := m.(type) {
		case Stdout:
			_, _ = p.stdoutW.Write(v) // a reader that went away is not an error
		case Stderr:
			_, _ = p.stderrW.Write(v)
		case ExitStatus:
			p.status = v
			return
		case Error:
			p.err = &RemoteError{Op: p.op, Code: v.Code, Message: v.Message}
			return
		default:
			p.err = fmt.Errorf("agent %s: unexpected %s frame: %w", p.op, m.Type(), ErrMalformed)
			return
		}
	}
}

// PID is the process id in the guest (in the agent's PID namespace).
func (p *Process) PID() int { return p.pid }

// Stdin returns the process's standard input. Close sends stdin EOF.
func (p *Process) Stdin() io.WriteCloser { return p.stdin }

// Stdout returns the process's standard output (TTY: the terminal's output).
func (p *Process) Stdout() io.Reader { return p.stdoutR }

// Stderr returns the process's standard error (TTY: always empty).
func (p *Process) Stderr() io.Reader { return p.stderrR }

// Resize sets the terminal size of a TTY process.
func (p *Process) Resize(rows, cols uint16) error {
	return p.conn.Send(Resize{Rows: rows, Cols: cols})
}

// Signal sends sig to the process.
func (p *Process) Signal(sig int) error {
	return p.conn.Send(Signal{Signal: sig})
}

// Wait returns how the process ended, once its output has been delivered.
func (p *Process) Wait() (ExitStatus, error) {
	<-p.done
	return p.status, p.err
}

// Done is closed when the process has ended (or its stream broke).
func (p *Process) Done() <-chan struct{} { return p.done }

// Close ends the stream. An exec'd process whose stream closes before it
// exits is killed; the workload keeps running.
func (p *Process) Close() error {
	err := p.conn.Close()
	p.stdoutR.Close()
	p.stderrR.Close()
	return err
}

type stdinWriter struct {
	conn   *Conn
	mu     sync.Mutex // guards closed
	closed bool
}

func (w *stdinWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	closed := w.closed
	w.mu.Unlock()
	if closed {
		return 0, errors.New("agent stdin: write after close")
	}
	if err := w.conn.SendBytes(TypeStdin, b); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (w *stdinWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	return w.conn.Send(StdinEOF{})
}
