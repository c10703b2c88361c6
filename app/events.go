package app

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// EventSink delivers events to the UI: runtime.EventsEmit in the desktop app, one WebSocket
// connection in the bridge, a recorder in tests. Emit must not block for long.
type EventSink interface {
	Emit(name string, data any)
}

// EventSinkFunc adapts a function to EventSink.
type EventSinkFunc func(name string, data any)

// Emit calls f.
func (f EventSinkFunc) Emit(name string, data any) { f(name, data) }

// EventPayloads maps each kind of event the services emit to a value of its payload's type (tools/tsgen
// generates the TypeScript from it). A subscription of kind "logs", "console", "stats" or "events"
// emits on the name its Subscribe call returned, then a StreamEnd on "<name>:end" (kind "end");
// "progress" is emitted on "progress:<ProgressID>", "session" on "session:<sid>" and
// "session-exit" on "session-exit:<sid>".
func EventPayloads() map[string]any {
	return map[string]any{
		"logs": []LogLine{}, "console": "", "stats": &Stats{}, "events": []Event{}, "end": StreamEnd{},
		"progress": Progress{}, "session": SessionOutput{}, "session-exit": SessionExit{},
	}
}

// Streams maps each method that opens a subscription or a session to the kind of its events (a key
// of EventPayloads); the method's result is the name the events come under. A session ("session")
// also emits "session-exit". The Go client (app/client) and the desktop relay (app/bridge.Relay)
// are generated from, or read, this table.
func Streams() map[string]string {
	return map[string]string{
		"Containers.SubscribeLogs": "logs", "Containers.SubscribeConsole": "console",
		"Containers.SubscribeStats": "stats", "System.SubscribeEvents": "events",
		"Containers.ExecStart": "session", "Containers.AttachStart": "session",
	}
}

// Batching limits: a batch is emitted when it is this old or this big, whichever comes first.
const (
	BatchInterval = 50 * time.Millisecond
	BatchBytes    = 64 << 10
)

// ReadyGrace is how long a new subscription holds its events when nobody calls Ready: the UI
// registers its listener only after the Subscribe call has returned the name.
const ReadyGrace = 500 * time.Millisecond

// subscription is one running stream: its name, the work behind it, and the gate that holds its
// events until the subscriber listens.
type subscription struct {
	name      string
	cancel    context.CancelFunc
	ready     chan struct{}
	readyOnce sync.Once
	done      chan struct{} // closed when the pump has returned
}

func (s *subscription) release() { s.readyOnce.Do(func() { close(s.ready) }) }

// hub owns the subscriptions of one Services value.
type hub struct {
	sink EventSink
	ctx  context.Context // cancelled by Close; parent of every subscription
	stop context.CancelFunc

	mu   sync.Mutex // guards subs and next
	subs map[string]*subscription
	next int
}

func newHub(sink EventSink) *hub {
	ctx, stop := context.WithCancel(context.Background())
	return &hub{sink: sink, ctx: ctx, stop: stop, subs: map[string]*subscription{}}
}

// start opens a subscription named "<kind>:<n>". open runs at once with the subscription's
// context and returns the pump, which then runs in its own goroutine and emits through emit; emit
// holds events until the subscriber is ready (Ready, or ReadyGrace). If open fails, nothing is left
// running. When the pump returns, the subscription is forgotten.
func (h *hub) start(kind string, open func(ctx context.Context, name string) (pump func(emit func(event string, data any)), err error)) (string, error) {
	h.mu.Lock()
	h.next++
	name := fmt.Sprintf("%s:%d", kind, h.next)
	ctx, cancel := context.WithCancel(h.ctx)
	s := &subscription{name: name, cancel: cancel, ready: make(chan struct{}), done: make(chan struct{})}
	h.subs[name] = s
	h.mu.Unlock()
	pump, err := open(ctx, name)
	if err != nil {
		cancel()
		h.remove(name)
		close(s.done)
		return "", toError(err)
	}
	go func() {
		defer close(s.done)
		defer h.remove(name)
		defer cancel()
		timer := time.AfterFunc(ReadyGrace, s.release)
		defer timer.Stop()
		pump(func(ev string, data any) {
			select {
			case <-s.ready:
			case <-ctx.Done():
				return
			}
			h.sink.Emit(ev, data)
		})
	}()
	return name, nil
}

func (h *hub) remove(name string) {
	h.mu.Lock()
	delete(h.subs, name)
	h.mu.Unlock()
}

func (h *hub) get(name string) *subscription {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.subs[name]
}

// ready releases the events of a subscription; unknown names are ignored.
func (h *hub) ready(name string) {
	if s := h.get(name); s != nil {
		s.release()
	}
}

// unsubscribe stops the work behind name and waits for it to end.
func (h *hub) unsubscribe(name string) error {
	s := h.get(name)
	if s == nil {
		return Errorf(CodeNotFound, "no subscription %q", name)
	}
	s.cancel()
	<-s.done
	return nil
}

// close stops every subscription and waits for them.
func (h *hub) close() {
	h.stop()
	h.mu.Lock()
	subs := make([]*subscription, 0, len(h.subs))
	for _, s := range h.subs {
		subs = append(subs, s)
	}
	h.mu.Unlock()
	for _, s := range subs {
		<-s.done
	}
}

// batch reads items from in and calls flush with batches no older than BatchInterval and, past
// BatchBytes (as measured by size), no bigger than needed. It returns when in is closed (after a
// last flush) or ctx ends.
func batch[T any](ctx context.Context, in <-chan T, size func(T) int, flush func([]T)) {
	batchEach(ctx, in, func(v T, add func(T)) { add(v) }, size, flush)
}

// batchSlices is batch for a source that already sends batches: their items are regrouped
// without a channel operation per item.
func batchSlices[T any](ctx context.Context, in <-chan []T, size func(T) int, flush func([]T)) {
	batchEach(ctx, in, func(vs []T, add func(T)) {
		for _, v := range vs {
			add(v)
		}
	}, size, flush)
}

// batchEach is the loop of batch and batchSlices: each hands every item of a message to add.
func batchEach[M, T any](ctx context.Context, in <-chan M, each func(M, func(T)), size func(T) int, flush func([]T)) {
	var (
		buf   []T
		bytes int
		timer = time.NewTimer(time.Hour)
	)
	timer.Stop()
	defer timer.Stop()
	send := func() {
		if len(buf) > 0 {
			flush(buf)
			buf, bytes = nil, 0
		}
		timer.Stop()
	}
	add := func(v T) {
		if len(buf) == 0 {
			timer.Reset(BatchInterval)
		}
		buf = append(buf, v)
		if bytes += size(v); bytes >= BatchBytes {
			send()
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-in:
			if !ok {
				send()
				return
			}
			each(m, add)
		case <-timer.C:
			send()
		}
	}
}
