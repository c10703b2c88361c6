package dockerapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/moby/moby/api/types/events"

	"github.com/skiff-containers/skiff/backend/engine"
)

// eventsStream serves GET /events: the engine's events from the request on (the engine keeps no
// history, so a since in the past does not replay), until the client goes or until passes.
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
	evs := s.eng.Events(ctx) // subscribed before the status goes out: nothing after it is missed
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	var stop <-chan time.Time
	if !until.IsZero() {
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
