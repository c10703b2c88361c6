// Package client is the typed Go client of the services over the bridge: the CLI, the menu-bar
// item and the desktop window's tray use it. Its methods (services.gen.go) are generated from the
// services' method listing (app/bridge.Methods) by tools/tsgen, so they cannot drift from what the
// bridge serves; this file holds the parts that are not one call: the streams a Subscribe* or
// *Start method opens, with their events decoded here once.
//
//	cl, err := client.Dial(ctx, filepath.Join(home, bridge.SocketName))
//	cs, err := cl.Containers.List(ctx, true)
//	logs, err := cl.Containers.SubscribeLogs(ctx, id, app.LogQuery{Follow: true})
//	for batch, ok, err := logs.Next(ctx); ok && err == nil; batch, ok, err = logs.Next(ctx) { … }
package client

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync/atomic"

	"github.com/skiff-containers/skiff/app"
	"github.com/skiff-containers/skiff/app/bridge"
)

// Client calls the services of one engine. It is safe for concurrent use.
type Client struct {
	services // Containers, Images, Networks, System: generated, one per service the bridge serves

	c *bridge.Client
}

// Dial connects to the engine's bridge socket at sockPath (bridge.ErrNoEngine when nothing answers).
func Dial(ctx context.Context, sockPath string) (*Client, error) {
	c, err := bridge.Dial(ctx, sockPath)
	if err != nil {
		return nil, err
	}
	return New(c), nil
}

// New returns the typed client over a bridge connection.
func New(c *bridge.Client) *Client {
	return &Client{services: newServices(c), c: c}
}

// Bridge returns the connection underneath, for code that relays calls as they are (bridge.Relay).
func (c *Client) Bridge() *bridge.Client { return c.c }

// Done is closed when the connection has ended.
func (c *Client) Done() <-chan struct{} { return c.c.Done() }

// Close closes the connection; the engine ends this connection's subscriptions and sessions.
func (c *Client) Close() error { return c.c.Close() }

// Progress receives the progress of a Containers.Create or Run (RunRequest.ProgressID) or an
// Images.Pull (its progressID) made with id; call it before that call, and Close it after.
func (c *Client) Progress(id string) *Stream[app.Progress] {
	return &Stream[app.Progress]{sub: c.c.Listen("progress:" + id), listen: true}
}

// NewProgressID returns a random id for Progress.
func NewProgressID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Stream is a subscription whose events carry a T: log line batches, console text, stats samples,
// engine event batches or progress.
type Stream[T any] struct {
	sub    *bridge.Subscription
	listen bool // from Listen: nothing to stop on the engine
	closed atomic.Bool
}

func newStream[T any](sub *bridge.Subscription) *Stream[T] { return &Stream[T]{sub: sub} }

// Name is the subscription's name on the engine.
func (s *Stream[T]) Name() string { return s.sub.Name }

// Next returns the next payload. ok is false once the stream has ended: its "<name>:end" event
// (err is then the reason the source ended, if any) or Close. A connection lost first is an error
// (bridge.ErrClosed).
func (s *Stream[T]) Next(ctx context.Context) (v T, ok bool, err error) {
	ev, ok, err := s.sub.Next(ctx)
	if err != nil {
		return v, false, err
	}
	if !ok {
		if s.listen || s.closed.Load() {
			return v, false, nil
		}
		return v, false, fmt.Errorf("%s: %w", s.sub.Name, bridge.ErrClosed)
	}
	if ev.Name == s.sub.Name+":end" {
		var end app.StreamEnd
		json.Unmarshal(ev.Data, &end)
		if end.Error != "" {
			return v, false, fmt.Errorf("%s: %s", s.sub.Name, end.Error)
		}
		return v, false, nil
	}
	if ls, isLogs := any(&v).(*[]app.LogLine); isLogs {
		*ls, err = app.DecodeLogLines(ev.Data) // the one high-volume stream: a faster decoder
	} else {
		err = json.Unmarshal(ev.Data, &v)
	}
	if err != nil {
		return v, false, fmt.Errorf("decoding %s: %w", ev.Name, err)
	}
	return v, true, nil
}

// Close stops the stream on the engine (a Progress stream only here).
func (s *Stream[T]) Close(ctx context.Context) error {
	s.closed.Store(true)
	if s.listen {
		s.sub.Detach()
		return nil
	}
	return s.sub.Close(ctx)
}

// Session is an exec or attach session: its output and exit come from Next, its input goes to
// Write and CloseInput.
type Session struct {
	sub *bridge.Subscription
	c   Containers
}

func newSession(sub *bridge.Subscription, c Containers) *Session { return &Session{sub: sub, c: c} }

// ID is the session's id on the engine.
func (s *Session) ID() string { return s.sub.Name }

// Output is what Session.Next returns: a chunk of output, or (Exit set) the end of the session.
type Output struct {
	Stream string // "stdout" or "stderr"
	Data   []byte
	Exit   *app.SessionExit
}

// Next returns the next chunk of output or the exit. After the exit, or with the connection
// closed (an error), there is nothing more.
func (s *Session) Next(ctx context.Context) (Output, error) {
	for {
		ev, ok, err := s.sub.Next(ctx)
		if err != nil {
			return Output{}, err
		}
		if !ok {
			return Output{}, fmt.Errorf("the connection to the engine closed before session %s ended", s.sub.Name)
		}
		switch ev.Name {
		case "session:" + s.sub.Name:
			var o app.SessionOutput
			if err := json.Unmarshal(ev.Data, &o); err != nil {
				return Output{}, fmt.Errorf("decoding the output of session %s: %w", s.sub.Name, err)
			}
			data, err := base64.StdEncoding.DecodeString(o.Data)
			if err != nil {
				return Output{}, fmt.Errorf("decoding the output of session %s: %w", s.sub.Name, err)
			}
			return Output{Stream: o.Stream, Data: data}, nil
		case "session-exit:" + s.sub.Name:
			var ex app.SessionExit
			if err := json.Unmarshal(ev.Data, &ex); err != nil {
				return Output{}, fmt.Errorf("decoding the exit of session %s: %w", s.sub.Name, err)
			}
			return Output{Exit: &ex}, nil
		}
	}
}

// Write sends p to the session's stdin.
func (s *Session) Write(ctx context.Context, p []byte) error {
	return s.c.SessionInput(ctx, s.sub.Name, base64.StdEncoding.EncodeToString(p))
}

// CloseInput closes the session's stdin (EOF).
func (s *Session) CloseInput(ctx context.Context) error {
	return s.c.SessionCloseInput(ctx, s.sub.Name)
}

// Resize sets the session's terminal size (a TTY session).
func (s *Session) Resize(ctx context.Context, rows, cols int) error {
	return s.c.SessionResize(ctx, s.sub.Name, rows, cols)
}

// Close ends the session on the engine.
func (s *Session) Close(ctx context.Context) error { return s.sub.Close(ctx) }
