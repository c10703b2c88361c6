package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"golang.org/x/term"

	"github.com/skiff-containers/skiff/app"
	"github.com/skiff-containers/skiff/app/bridge"
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
	cl          *bridge.Client
	sub         *bridge.Subscription
	tty         bool
	interactive bool
}

func (s *session) run(ctx context.Context) (int, error) {
	sid := s.sub.Name
	t := s.c.terminal()
	if s.tty && t != nil {
		if st, err := term.MakeRaw(int(t.in.Fd())); err == nil {
			defer term.Restore(int(t.in.Fd()), st)
		}
		if rows, cols := t.size(); rows > 0 {
			s.cl.Call(ctx, "Containers.SessionResize", nil, sid, rows, cols)
		}
		stop := watchResize(func() {
			if rows, cols := t.size(); rows > 0 {
				s.cl.Call(ctx, "Containers.SessionResize", nil, sid, rows, cols)
			}
		})
		defer stop()
	}
	if s.interactive {
		go s.pumpStdin(ctx, sid)
	}
	for {
		ev, ok, err := s.sub.Next(ctx)
		if err != nil {
			return 0, err
		}
		if !ok {
			return 0, fmt.Errorf("the connection to the engine closed before %s ended", sid)
		}
		switch {
		case ev.Name == "session:"+sid:
			var o app.SessionOutput
			if err := json.Unmarshal(ev.Data, &o); err != nil {
				return 0, fmt.Errorf("decoding session output: %w", err)
			}
			data, err := base64.StdEncoding.DecodeString(o.Data)
			if err != nil {
				return 0, fmt.Errorf("decoding session output: %w", err)
			}
			w := s.c.out
			if o.Stream == "stderr" {
				w = s.c.errw
			}
			w.Write(data)
		case ev.Name == "session-exit:"+sid:
			var ex app.SessionExit
			if err := json.Unmarshal(ev.Data, &ex); err != nil {
				return 0, fmt.Errorf("decoding session exit: %w", err)
			}
			if ex.Error != "" && !strings.Contains(ex.Error, "EOF") {
				return ex.Code, fmt.Errorf("%s", ex.Error)
			}
			return ex.Code, nil
		}
	}
}

func (s *session) pumpStdin(ctx context.Context, sid string) {
	buf := make([]byte, 32<<10)
	for {
		n, err := s.c.in.Read(buf)
		if n > 0 {
			if cerr := s.cl.Call(ctx, "Containers.SessionInput", nil, sid, base64.StdEncoding.EncodeToString(buf[:n])); cerr != nil {
				return
			}
		}
		if err != nil {
			s.cl.Call(ctx, "Containers.SessionCloseInput", nil, sid)
			return
		}
	}
}

// proxySignals forwards SIGINT, SIGTERM and SIGHUP to the container (Docker's sig-proxy) until stop.
func (c *cliCtx) proxySignals(ctx context.Context, cl *bridge.Client, id string) (stop func()) {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, interruptSignals...)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case sig := <-ch:
				cl.Call(ctx, "Containers.Kill", nil, id, signalName(sig))
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}
