package engine

import (
	"context"
	"sync"
	"time"
)

// eventBus fans events out to subscribers. Each subscriber has a buffered queue drained by its own
// goroutine, so a slow subscriber never blocks the engine; past 1024 queued events it loses the oldest.
type eventBus struct {
	mu     sync.Mutex // guards subs and closed
	subs   map[*eventSub]struct{}
	closed bool
	hist   []Event // the last eventHistoryMax events, for replay (eventlog.go)
}

type eventSub struct {
	mu    sync.Mutex // guards queue
	queue []Event
	wake  chan struct{} // 1-buffered: "queue has something"
}

const eventQueueMax = 1024

func newEventBus() *eventBus { return &eventBus{subs: map[*eventSub]struct{}{}} }

func (b *eventBus) publish(ev Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.record(ev)
	for s := range b.subs {
		s.mu.Lock()
		if len(s.queue) >= eventQueueMax {
			s.queue = s.queue[1:]
		}
		s.queue = append(s.queue, ev)
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

func (b *eventBus) subscribe(ctx context.Context) <-chan Event { return b.subscribeFrom(ctx, nil) }

// subscribeFrom is subscribe with the history from *since on queued first (nil: none).
func (b *eventBus) subscribeFrom(ctx context.Context, since *time.Time) <-chan Event {
	out := make(chan Event)
	s := &eventSub{wake: make(chan struct{}, 1)}
	b.mu.Lock()
	if since != nil {
		s.queue = b.since(*since, time.Time{})
		s.wake <- struct{}{}
	}
	if b.closed {
		b.mu.Unlock()
		close(out)
		return out
	}
	b.subs[s] = struct{}{}
	done := make(chan struct{})
	b.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { close(done) })
	go func() {
		defer close(out)
		defer stop()
		defer b.unsubscribe(s)
		for {
			s.mu.Lock()
			q := s.queue
			s.queue = nil
			s.mu.Unlock()
			for _, ev := range q {
				select {
				case out <- ev:
				case <-done:
					return
				}
			}
			select {
			case _, ok := <-s.wake:
				if !ok {
					// Bus closed: deliver what is left, then end.
					s.mu.Lock()
					q := s.queue
					s.queue = nil
					s.mu.Unlock()
					for _, ev := range q {
						select {
						case out <- ev:
						case <-done:
							return
						}
					}
					return
				}
			case <-done:
				return
			}
		}
	}()
	return out
}

func (b *eventBus) unsubscribe(s *eventSub) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.subs, s)
}

func (b *eventBus) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	for s := range b.subs {
		close(s.wake)
	}
	b.subs = map[*eventSub]struct{}{}
}
