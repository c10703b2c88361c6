package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/gorilla/websocket"

	"github.com/skiff-containers/skiff/app"
)

// ErrNoEngine means nothing answers on the socket: neither the app nor `skiff daemon` runs.
var ErrNoEngine = errors.New("no Skiff engine is running")

// ErrClosed means the connection to the engine was lost.
var ErrClosed = errors.New("connection to the Skiff engine closed")

// Event is one event received by a client.
type Event struct {
	Name string
	Data json.RawMessage
}

// Client calls the services over a bridge connection. It is safe for concurrent use.
type Client struct {
	ws *websocket.Conn

	wmu sync.Mutex // serialises writes

	mu      sync.Mutex // guards the fields below
	nextID  int64
	pending map[int64]*pending
	subs    map[string]*Subscription // by event name
	others  func(Event)              // events no subscription receives (OnOtherEvents)
	err     error                    // set when the read loop ends
	done    chan struct{}
}

type pending struct {
	ch    chan *message
	subOf bool // a Subscribe call: route the name's events
	sub   *Subscription
}

// Dial connects to the bridge on the unix socket at sockPath.
func Dial(ctx context.Context, sockPath string) (*Client, error) {
	d := websocket.Dialer{
		NetDialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var nd net.Dialer
			return nd.DialContext(ctx, "unix", sockPath)
		},
		ReadBufferSize: 64 << 10, WriteBufferSize: 32 << 10,
	}
	ws, _, err := d.DialContext(ctx, "ws://skiff/api/ws", nil)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			return nil, fmt.Errorf("%w (no answer on %s)", ErrNoEngine, sockPath)
		}
		return nil, fmt.Errorf("connecting to %s: %w", sockPath, err)
	}
	return newClient(ws), nil
}

// DialURL connects to a bridge over TCP, e.g. "http://127.0.0.1:8470" and the token it printed.
func DialURL(ctx context.Context, baseURL, token string) (*Client, error) {
	u := strings.Replace(strings.TrimSuffix(baseURL, "/"), "http", "ws", 1) + "/api/ws"
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, u, h)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", baseURL, err)
	}
	return newClient(ws), nil
}

func newClient(ws *websocket.Conn) *Client {
	c := &Client{ws: ws, pending: map[int64]*pending{}, subs: map[string]*Subscription{}, done: make(chan struct{})}
	ws.SetReadLimit(64 << 20)
	go c.readLoop()
	return c
}

// Close closes the connection; the engine ends this connection's subscriptions and sessions.
func (c *Client) Close() error {
	err := c.ws.Close()
	<-c.done
	return err
}

// Done is closed when the connection has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// Call calls method ("Containers.List") with params and decodes its result into result (nil to
// drop it). Engine errors are *app.Error values.
func (c *Client) Call(ctx context.Context, method string, result any, params ...any) error {
	m, err := c.roundTrip(ctx, method, params, false)
	if err != nil {
		return err
	}
	if result != nil && len(m.Result) > 0 {
		if err := json.Unmarshal(m.Result, result); err != nil {
			return fmt.Errorf("%s: decoding the result: %w", method, err)
		}
	}
	return nil
}

// Subscribe calls a method that returns a subscription or session name (Containers.SubscribeLogs,
// ExecStart, ...) and returns the subscription, which receives every event under that name
// ("<name>", "<name>:end", "session:<name>", "session-exit:<name>") from the first one on.
func (c *Client) Subscribe(ctx context.Context, method string, params ...any) (*Subscription, error) {
	m, err := c.roundTrip(ctx, method, params, true)
	if err != nil {
		return nil, err
	}
	return m.sub, nil
}

// Listen receives the events named exactly name (e.g. "progress:<id>"); call it before the call
// that makes them.
func (c *Client) Listen(name string) *Subscription {
	s := newSubscription(c, name)
	c.mu.Lock()
	c.subs[name] = s
	c.mu.Unlock()
	return s
}

type reply struct {
	*message
	sub *Subscription
}

func (c *Client) roundTrip(ctx context.Context, method string, params []any, sub bool) (*reply, error) {
	raw := make([]json.RawMessage, len(params))
	for i, p := range params {
		b, err := json.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("%s: encoding parameter %d: %w", method, i+1, err)
		}
		raw[i] = b
	}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.err
	}
	c.nextID++
	id := c.nextID
	p := &pending{ch: make(chan *message, 1), subOf: sub}
	c.pending[id] = p
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()
	c.wmu.Lock()
	err := c.ws.WriteJSON(request{ID: id, Method: method, Params: raw})
	c.wmu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", method, ErrClosed, err)
	}
	select {
	case m := <-p.ch:
		if m == nil {
			c.mu.Lock()
			defer c.mu.Unlock()
			return nil, fmt.Errorf("%s: %w", method, c.err)
		}
		if m.Error != nil {
			return nil, m.Error
		}
		return &reply{message: m, sub: p.sub}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *Client) readLoop() {
	defer close(c.done)
	var err error
	for {
		var m message
		var raw []byte
		if _, raw, err = c.ws.ReadMessage(); err != nil {
			break
		}
		if err = parseMessage(raw, &m); err != nil {
			break
		}
		if m.Event != "" {
			c.dispatch(Event{Name: m.Event, Data: m.Data})
			continue
		}
		c.mu.Lock()
		p := c.pending[m.ID]
		if p != nil && p.subOf && m.Error == nil {
			var name string
			if json.Unmarshal(m.Result, &name) == nil && name != "" {
				p.sub = newSubscription(c, name)
				for _, n := range []string{name, name + ":end", "session:" + name, "session-exit:" + name} {
					c.subs[n] = p.sub
				}
			}
		}
		c.mu.Unlock()
		if p != nil {
			p.ch <- &m
		}
	}
	c.mu.Lock()
	c.err = fmt.Errorf("%w: %v", ErrClosed, err)
	for _, p := range c.pending {
		close(p.ch)
	}
	c.pending = map[int64]*pending{}
	subs := c.subs
	c.subs = map[string]*Subscription{}
	c.mu.Unlock()
	for _, s := range subs {
		s.finish()
	}
}

func (c *Client) dispatch(ev Event) {
	c.mu.Lock()
	s, others := c.subs[ev.Name], c.others
	c.mu.Unlock()
	switch {
	case s != nil:
		s.push(ev)
	case others != nil:
		others(ev)
	}
}

// OnOtherEvents hands f every event that no Subscribe or Listen subscription receives (a
// relay passes them on as they are). f runs on the connection's reading goroutine: it must not block.
func (c *Client) OnOtherEvents(f func(Event)) {
	c.mu.Lock()
	c.others = f
	c.mu.Unlock()
}

// Subscription queues the events of one subscription (without bound, so a slow reader never
// stalls the connection's replies).
type Subscription struct {
	Name string
	c    *Client

	mu     sync.Mutex // guards queue and closed
	queue  []Event
	closed bool
	signal chan struct{}
}

func newSubscription(c *Client, name string) *Subscription {
	return &Subscription{Name: name, c: c, signal: make(chan struct{}, 1)}
}

func (s *Subscription) push(ev Event) {
	s.mu.Lock()
	s.queue = append(s.queue, ev)
	s.mu.Unlock()
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

func (s *Subscription) finish() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

// Next returns the next event; ok is false once the connection has closed and the queue is empty.
func (s *Subscription) Next(ctx context.Context) (ev Event, ok bool, err error) {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			ev = s.queue[0]
			s.queue[0] = Event{}
			s.queue = s.queue[1:]
			s.mu.Unlock()
			return ev, true, nil
		}
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return Event{}, false, nil
		}
		select {
		case <-s.signal:
		case <-ctx.Done():
			return Event{}, false, ctx.Err()
		}
	}
}

// Close stops the subscription on the engine (Unsubscribe) and here.
func (s *Subscription) Close(ctx context.Context) error {
	s.Detach()
	err := s.c.Call(ctx, "Containers.Unsubscribe", nil, s.Name)
	if app.CodeOf(err) == app.CodeNotFound {
		return nil // it had ended by itself
	}
	return err
}

// Detach forgets the subscription here only: a Listen subscription (there is nothing to stop on
// the engine) or one that has ended. Next returns the events already queued, then ok false.
func (s *Subscription) Detach() {
	s.c.mu.Lock()
	for n, sub := range s.c.subs {
		if sub == s {
			delete(s.c.subs, n)
		}
	}
	s.c.mu.Unlock()
	s.finish()
}
