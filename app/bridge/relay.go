package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/skiff-containers/skiff/app"
)

// Relay is what the desktop window binds (Wails): one method, Call, taking a request as the bridge
// protocol carries it (a method name and its parameters as JSON) and returning the result as JSON.
// A window whose engine runs in its own process dispatches to its services as the socket does
// (NewLocalRelay). A window attached to another process's engine passes calls and events through a
// bridge connection as they are (NewRemoteRelay), serving only its own windows and dialogs
// (app.DesktopMethods) itself; nothing is decoded and encoded again on the way.
type Relay struct {
	local  methods // every method (local), or the desktop methods (remote)
	remote *Client // nil for a local relay
	sink   app.EventSink
	ctx    context.Context // the calls' context: ends with the relay

	mu    sync.Mutex // guards gates
	gates map[string]*gate
}

// gate holds the events of one relayed subscription until the window listens (Ready).
type gate struct {
	sub   *Subscription
	ready chan struct{}
	once  sync.Once
}

func (g *gate) open() { g.once.Do(func() { close(g.ready) }) }

// NewLocalRelay serves the window's calls with svc, whose sink is the window's.
func NewLocalRelay(svc *app.Services) *Relay {
	return &Relay{local: methodsOf(svc), ctx: context.Background()}
}

// NewRemoteRelay passes the window's calls to the engine behind c and emits that connection's
// events to sink (the window's) as they come; desktop serves app.DesktopMethods. The relay's calls
// end with ctx.
func NewRemoteRelay(ctx context.Context, c *Client, desktop *app.Services, sink app.EventSink) *Relay {
	all := methodsOf(desktop)
	local := methods{}
	for _, name := range app.DesktopMethods() {
		local[name] = all[name]
	}
	r := &Relay{local: local, remote: c, sink: sink, ctx: ctx, gates: map[string]*gate{}}
	c.OnOtherEvents(func(ev Event) { sink.Emit(ev.Name, ev.Data) }) // progress:<id>, listened to before the call
	return r
}

// Call calls method with params and returns its result. Errors are *app.Error values.
func (r *Relay) Call(method string, params []json.RawMessage) (json.RawMessage, error) {
	if _, ok := r.local[method]; ok || r.remote == nil {
		res, err := r.local.call(method, params)
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return res, nil
	}
	switch method {
	case "Containers.Ready":
		var name string
		if len(params) == 1 && json.Unmarshal(params[0], &name) == nil {
			if g := r.gate(name); g != nil {
				g.open()
			}
		}
		return json.RawMessage("null"), nil
	case "Containers.Unsubscribe", "System.Unsubscribe":
		var name string
		if len(params) == 1 && json.Unmarshal(params[0], &name) == nil {
			r.mu.Lock()
			g := r.gates[name]
			delete(r.gates, name)
			r.mu.Unlock()
			if g != nil {
				g.open() // its pump sees the end at once
				return json.RawMessage("null"), remoteError(g.sub.Close(r.ctx))
			}
		}
	}
	args := make([]any, len(params))
	for i, p := range params {
		args[i] = p
	}
	if _, ok := app.Streams()[method]; ok {
		sub, err := r.remote.Subscribe(r.ctx, method, args...)
		if err != nil {
			return nil, remoteError(err)
		}
		r.relay(sub)
		return json.Marshal(sub.Name)
	}
	var res json.RawMessage
	if err := r.remote.Call(r.ctx, method, &res, args...); err != nil {
		return nil, remoteError(err)
	}
	if len(res) == 0 {
		res = json.RawMessage("null")
	}
	return res, nil
}

// relay emits sub's events once the window listens (its Ready call, or app.ReadyGrace after the
// call, as the services do), until the subscription ends or is closed.
func (r *Relay) relay(sub *Subscription) {
	g := &gate{sub: sub, ready: make(chan struct{})}
	r.mu.Lock()
	r.gates[sub.Name] = g
	r.mu.Unlock()
	timer := time.AfterFunc(app.ReadyGrace, g.open)
	go func() {
		defer func() {
			timer.Stop()
			r.mu.Lock()
			delete(r.gates, sub.Name)
			r.mu.Unlock()
		}()
		select {
		case <-g.ready:
		case <-r.ctx.Done():
			return
		}
		for {
			ev, ok, err := sub.Next(r.ctx)
			if err != nil || !ok {
				return
			}
			r.sink.Emit(ev.Name, ev.Data)
			if ev.Name == sub.Name+":end" || ev.Name == "session-exit:"+sub.Name {
				sub.Detach() // it has ended on the engine
				return
			}
		}
	}()
}

func (r *Relay) gate(name string) *gate {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gates[name]
}

// remoteError keeps an engine's *app.Error and makes a lost connection one the window can show.
func remoteError(err error) error {
	var ae *app.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, ErrClosed):
		return &app.Error{Code: app.CodeUnavailable, Message: err.Error()}
	}
	return toAppError(err)
}
