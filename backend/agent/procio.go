//go:build linux

package agent

import (
	"errors"
	"io"
	"os"
	"sync"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// stdio holds the agent's ends of a process's standard streams.
type stdio struct {
	tty    *os.File // pty master (TTY mode); stdin and stdout go through it
	stdin  *os.File // pipe write end (non-TTY, Stdin true)
	stdout *os.File // pipe read ends (non-TTY)
	stderr *os.File
	child  []*os.File // the child's fds 0, 1, 2; closed by closeChild after fork
}

// newStdio prepares the streams of a process. For a TTY, openTTY supplies
// the terminal; nil leaves fds 0-2 on /dev/null until attachTTY (Run: the
// container init opens the terminal inside the container and sends it).
func newStdio(spec *agentproto.ProcessSpec, openTTY func() (master, slave *os.File, err error)) (*stdio, error) {
	s := &stdio{}
	if spec.TTY {
		if openTTY == nil {
			null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
			if err != nil {
				return nil, err
			}
			s.child = []*os.File{null, null, null}
			return s, nil
		}
		master, slave, err := openTTY()
		if err != nil {
			return nil, err
		}
		s.tty = master
		s.child = []*os.File{slave, slave, slave}
		return s, nil
	}
	var in *os.File
	if spec.Stdin {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		in, s.stdin = r, w
	} else {
		f, err := os.Open(os.DevNull)
		if err != nil {
			return nil, err
		}
		in = f
	}
	or, ow, err := os.Pipe()
	if err != nil {
		s.close()
		in.Close()
		return nil, err
	}
	er, ew, err := os.Pipe()
	if err != nil {
		s.close()
		in.Close()
		or.Close()
		ow.Close()
		return nil, err
	}
	// Bigger pipes: fewer wake-ups and frames for bulk output.
	withFd(or, func(fd int) { _, _ = unix.FcntlInt(uintptr(fd), unix.F_SETPIPE_SZ, 1<<20) })
	s.stdout, s.stderr = or, er
	s.child = []*os.File{in, ow, ew}
	return s, nil
}

// withFd runs f on the descriptor of file without making it blocking
// (which os.File.Fd would do, and then Close could not unblock a Read).
func withFd(file *os.File, f func(fd int)) {
	rc, err := file.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) { f(int(fd)) })
}

// childFds returns the fds the child gets as 0, 1, 2 (plus extra).
func (s *stdio) childFds(extra ...*os.File) []uintptr {
	var fds []uintptr
	for _, f := range append(s.child, extra...) {
		fds = append(fds, f.Fd())
	}
	return fds
}

func (s *stdio) closeChild() {
	seen := map[*os.File]bool{}
	for _, f := range s.child {
		if !seen[f] {
			f.Close()
			seen[f] = true
		}
	}
	s.child = nil
}

func (s *stdio) close() {
	s.closeChild()
	for _, f := range []*os.File{s.tty, s.stdin, s.stdout, s.stderr} {
		if f != nil {
			f.Close()
		}
	}
}

// serveProcess connects a started process to its stream: output frames out,
// stdin/resize/signal frames in, and the exit status last. onBreak runs when
// the stream fails before the process has exited; onExit (if set) runs with
// the status just before it is sent.
func serveProcess(log *zap.Logger, c *agentproto.Conn, pid int, exited <-chan unix.WaitStatus, s *stdio, onBreak func(), onExit func(agentproto.ExitStatus)) {
	var outputs sync.WaitGroup
	pump := func(t agentproto.Type, f *os.File) {
		defer outputs.Done()
		buf := make([]byte, agentproto.HeaderSize+agentproto.MaxFrameSize)
		broken := false
		read := f.Read
		if rc, ok := nonBlocking(f); ok {
			read = func(b []byte) (int, error) { return rawRead(rc, b) }
		}
		for {
			n, err := read(buf[agentproto.HeaderSize:])
			if n > 0 && !broken {
				if c.SendRaw(t, buf[:agentproto.HeaderSize+n]) != nil {
					broken = true // keep draining so the process never blocks on a full pipe
				}
			}
			if err != nil {
				return // EOF, or EIO from a pty whose slave side is gone
			}
		}
	}
	if s.tty != nil {
		outputs.Add(1)
		go pump(agentproto.TypeStdout, s.tty)
	} else {
		outputs.Add(2)
		go pump(agentproto.TypeStdout, s.stdout)
		go pump(agentproto.TypeStderr, s.stderr)
	}

	done := make(chan struct{})
	go func() {
		for {
			m, err := c.Recv()
			if err != nil {
				select {
				case <-done:
				default:
					if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
						log.Debug("process stream broke", zap.Int("pid", pid), zap.Error(err))
					}
					if onBreak != nil {
						onBreak()
					}
				}
				return
			}
			switch v := m.(type) {
			case agentproto.Stdin:
				w := s.stdin
				if s.tty != nil {
					w = s.tty
				}
				if w != nil {
					_, _ = w.Write(v)
				}
			case agentproto.StdinEOF:
				if s.stdin != nil {
					s.stdin.Close()
				}
			case agentproto.Resize:
				if s.tty != nil {
					withFd(s.tty, func(fd int) {
						_ = unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: v.Rows, Col: v.Cols})
					})
				}
			case agentproto.Signal:
				_ = unix.Kill(pid, unix.Signal(v.Signal))
			default:
				_ = c.Send(agentproto.ErrorMessage(errors.New("unexpected " + m.Type().String() + " frame on a process stream: " + errBadRequest.Error())))
			}
		}
	}()

	ws := <-exited
	st := exitStatus(ws)
	// Output normally ends with the process; a background child that keeps
	// the pipes open gets a grace period, then its output is cut.
	outDone := make(chan struct{})
	go func() { outputs.Wait(); close(outDone) }()
	select {
	case <-outDone:
	case <-time.After(2 * time.Second):
		for _, f := range []*os.File{s.tty, s.stdout, s.stderr} {
			if f != nil {
				f.Close()
			}
		}
		<-outDone
	}
	close(done)
	if onExit != nil {
		onExit(st)
	}
	_ = c.Send(st)
	s.close()
}

func exitStatus(ws unix.WaitStatus) agentproto.ExitStatus {
	if ws.Signaled() {
		return agentproto.ExitStatus{Code: 128 + int(ws.Signal()), Signal: int(ws.Signal())}
	}
	return agentproto.ExitStatus{Code: ws.ExitStatus()}
}
