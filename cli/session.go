package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"golang.org/x/term"

	"github.com/skiff-containers/skiff/app/client"
)

// terminal is the controlling terminal when stdin and stdout are both terminals.
type terminal struct {
	in, out *os.File
}

func (c *cliCtx) terminal() *terminal {
	in, ok1 := c.in.(*os.File)
	out, ok2 := c.out.(*os.File)
	if ok1 && ok2 && term.IsTerminal(int(in.Fd())) && term.IsTerminal(int(out.Fd())) {
		return &terminal{in: in, out: out}
	}
	return nil
}

func (t *terminal) size() (rows, cols int) {
	if t == nil {
		return 0, 0
	}
	w, h, err := term.GetSize(int(t.out.Fd()))
	if err != nil {
		return 0, 0
	}
	return h, w
}

// isTerminal reports whether w is a terminal (for progress output).
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// session connects a bridge session to this process's stdio: output to stdout/stderr, stdin to
// the session when interactive, raw mode and window-size changes when tty. It returns the
// session's exit code.
type session struct {
	c           *cliCtx
	cl          *client.Client
	s           *client.Session
	tty         bool
	interactive bool
}

func (s *session) run(ctx context.Context) (int, error) {
	t := s.c.terminal()
	if s.tty && t != nil {
		if st, err := term.MakeRaw(int(t.in.Fd())); err == nil {
			defer term.Restore(int(t.in.Fd()), st)
		}
		if rows, cols := t.size(); rows > 0 {
			s.s.Resize(ctx, rows, cols)
		}
		stop := watchResize(func() {
			if rows, cols := t.size(); rows > 0 {
				s.s.Resize(ctx, rows, cols)
			}
		})
		defer stop()
	}
	if s.interactive {
		go s.pumpStdin(ctx)
	}
	for {
		o, err := s.s.Next(ctx)
		if err != nil {
			return 0, err
		}
		if ex := o.Exit; ex != nil {
			if ex.Error != "" && !strings.Contains(ex.Error, "EOF") {
				return ex.Code, fmt.Errorf("%s", ex.Error)
			}
			return ex.Code, nil
		}
		w := s.c.out
		if o.Stream == "stderr" {
			w = s.c.errw
		}
		w.Write(o.Data)
	}
}

func (s *session) pumpStdin(ctx context.Context) {
	buf := make([]byte, 32<<10)
	for {
		n, err := s.c.in.Read(buf)
		if n > 0 {
			if cerr := s.s.Write(ctx, buf[:n]); cerr != nil {
				return
			}
		}
		if err != nil {
			s.s.CloseInput(ctx)
			return
		}
	}
}

// proxySignals forwards SIGINT, SIGTERM and SIGHUP to the container (Docker's sig-proxy) until stop.
func (c *cliCtx) proxySignals(ctx context.Context, cl *client.Client, id string) (stop func()) {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, interruptSignals...)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case sig := <-ch:
				cl.Containers.Kill(ctx, id, signalName(sig))
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}
