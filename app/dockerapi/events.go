package dockerapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/moby/moby/api/types/events"

	"github.com/skiff-containers/skiff/backend/engine"
)

// eventsStream serves GET /events: with since, the engine's kept events from then on (its last
// 1000) and then the live ones; until ends the stream when it passes (at once, after the replay,
// when it has passed already); without either, the events from the request on.
func (s *Server) eventsStream(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		fail(w, err)
		return
	}
	if err := f.only("type", "container", "image", "event", "label"); err != nil {
		fail(w, err)
		return
	}
	since, err := parseLogTime(r.URL.Query().Get("since"))
	if err != nil {
		fail(w, err)
		return
	}
	until, err := parseLogTime(r.URL.Query().Get("until"))
	if err != nil {
		fail(w, err)
		return
	}
	ctx := r.Context()
	var evs <-chan engine.Event
	switch {
	case !until.IsZero() && !until.After(time.Now()): // all in the past: the history only
		hist := make(chan engine.Event)
		go func() {
			defer close(hist)
			for _, ev := range s.eng.EventHistory(since, until) {
				select {
				case hist <- ev:
				case <-ctx.Done():
					return
				}
			}
		}()
		evs = hist
	case !since.IsZero():
		evs = s.eng.EventsSince(ctx, since)
	default:
		evs = s.eng.Events(ctx) // subscribed before the status goes out: nothing after it is missed
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	var stop <-chan time.Time
	if until.After(time.Now()) {
		t := time.NewTimer(time.Until(until))
		defer t.Stop()
		stop = t.C
	}
	enc := json.NewEncoder(w)
	for {
		select {
		case ev, ok := <-evs:
			if !ok {
				return
			}
			if !until.IsZero() && ev.Time.After(until) {
				return
			}
			if ev.Time.Before(since) || ev.Action == "pull-progress" || !matchEvent(f, ev) {
				continue
			}
			if enc.Encode(eventMessage(ev)) != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		case <-stop:
			return
		case <-ctx.Done():
			return
		}
	}
}

func eventMessage(ev engine.Event) events.Message {
	attrs := map[string]string{}
	for k, v := range ev.Attributes {
		attrs[k] = v
	}
	if ev.Name != "" {
		attrs["name"] = ev.Name
	}
	return events.Message{Type: events.Type(ev.Type), Action: events.Action(ev.Action),
		Actor: events.Actor{ID: ev.ID, Attributes: attrs}, Scope: "local",
		Time: ev.Time.Unix(), TimeNano: ev.Time.UnixNano()}
}

func matchEvent(f filters, ev engine.Event) bool {
	return f.any("type", func(v string) bool { return v == ev.Type }) &&
		f.any("event", func(v string) bool { return v == ev.Action || strings.HasPrefix(ev.Action, v+":") }) &&
		f.any("container", func(v string) bool {
			return ev.Type == "container" && (v == ev.Name || strings.HasPrefix(ev.ID, v))
		}) &&
		f.any("image", func(v string) bool {
			return (ev.Type == "image" && (v == ev.ID || v == ev.Name)) || sameImage(v, ev.Attributes["image"], "\x00")
		}) &&
		f.labels(ev.Attributes)
}
