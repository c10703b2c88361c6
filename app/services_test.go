package app_test

import (
	"encoding/base64"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/app"
	"github.com/skiff-containers/skiff/app/apptest"
)

// recorder is an EventSink that keeps every event.
type recorder struct {
	mu     sync.Mutex
	events []recorded
	signal chan struct{}
}

type recorded struct {
	name string
	data any
	at   time.Time
}

func newRecorder() *recorder { return &recorder{signal: make(chan struct{}, 1)} }

func (r *recorder) Emit(name string, data any) {
	r.mu.Lock()
	r.events = append(r.events, recorded{name, data, time.Now()})
	r.mu.Unlock()
	select {
	case r.signal <- struct{}{}:
	default:
	}
}

// waitFor waits until an event named name has arrived and returns all events so far.
func (r *recorder) waitFor(t *testing.T, name string) []recorded {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		evs := append([]recorded(nil), r.events...)
		r.mu.Unlock()
		for _, e := range evs {
			if e.name == name {
				return evs
			}
		}
		select {
		case <-r.signal:
		case <-deadline:
			t.Fatalf("no event %q; got %d events", name, len(evs))
		}
	}
}

func setup(t *testing.T) (*app.Services, *apptest.Fake, *recorder) {
	fake := apptest.NewFake()
	rec := newRecorder()
	svc := app.New(fake, rec)
	t.Cleanup(svc.Close)
	return svc, fake, rec
}

func TestLogsAreBatchedBySizeAndEnd(t *testing.T) {
	svc, fake, rec := setup(t)
	c, err := svc.Containers.Create(app.RunRequest{Image: "busybox", Name: "logger"})
	if err != nil {
		t.Fatal(err)
	}
	const n, size = 5000, 100 // 500 kB: at least 8 batches of 64 KiB
	fake.AddLogs(c.ID, n, size)
	name, err := svc.Containers.SubscribeLogs(c.ID, app.LogQuery{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Containers.Ready(name)
	evs := rec.waitFor(t, name+":end")
	var got []app.LogLine
	batches := 0
	for _, e := range evs {
		if e.name != name {
			continue
		}
		lines := e.data.([]app.LogLine)
		bytes := 0
		for _, l := range lines {
			bytes += len(l.Data)
		}
		if bytes > app.BatchBytes+size {
			t.Errorf("batch of %d bytes exceeds %d", bytes, app.BatchBytes)
		}
		batches++
		got = append(got, lines...)
	}
	if len(got) != n {
		t.Fatalf("got %d lines, want %d", len(got), n)
	}
	for i, l := range got {
		if !strings.HasPrefix(l.Data, "line "+strconv.Itoa(i)+" ") {
			t.Fatalf("line %d out of order: %q", i, l.Data[:12])
		}
	}
	if batches < n*size/app.BatchBytes || batches > n/2 {
		t.Errorf("%d batches for %d lines: not batched by size", batches, n)
	}
}

func TestFollowBatchesByTimeAndUnsubscribeStopsWork(t *testing.T) {
	svc, fake, rec := setup(t)
	c, err := svc.Containers.Run(app.RunRequest{Image: "busybox", Cmd: []string{"sleep"}})
	if err != nil {
		t.Fatal(err)
	}
	name, err := svc.Containers.SubscribeLogs(c.ID, app.LogQuery{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	svc.Containers.Ready(name)
	// A single line arrives although the batch is far from full and the stream goes on: the
	// batch was flushed by time.
	fake.AddLogs(c.ID, 1, 10)
	rec.waitFor(t, name)
	if fake.ActiveStreams.Load() != 1 {
		t.Fatalf("active streams = %d, want 1", fake.ActiveStreams.Load())
	}
	if err := svc.Containers.Unsubscribe(name); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for fake.ActiveStreams.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := fake.ActiveStreams.Load(); n != 0 {
		t.Errorf("after Unsubscribe %d streams still run", n)
	}
	if err := svc.Containers.Unsubscribe(name); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("second Unsubscribe: %v, want not_found", err)
	}
}

func TestEventsHeldUntilReady(t *testing.T) {
	svc, fake, rec := setup(t)
	c, _ := svc.Containers.Create(app.RunRequest{Image: "busybox"})
	fake.AddLogs(c.ID, 3, 10)
	name, err := svc.Containers.SubscribeLogs(c.ID, app.LogQuery{})
	if err != nil {
		t.Fatal(err)
	}
	subscribed := time.Now()
	time.Sleep(150 * time.Millisecond)
	rec.mu.Lock()
	early := len(rec.events)
	rec.mu.Unlock()
	// Held for ReadyGrace (500 ms) at least; a machine too loaded to sleep 150 ms in 400 ms proves nothing.
	if early != 0 && time.Since(subscribed) < 400*time.Millisecond {
		t.Fatalf("%d events before Ready", early)
	}
	readyAt := time.Now()
	svc.Containers.Ready(name)
	evs := rec.waitFor(t, name+":end")
	if readyAt.Sub(subscribed) < 400*time.Millisecond && evs[0].at.Before(readyAt) {
		t.Error("event emitted before Ready")
	}
}

func TestExecSessionRoundTrip(t *testing.T) {
	svc, _, rec := setup(t)
	c, _ := svc.Containers.Run(app.RunRequest{Image: "busybox", Cmd: []string{"sleep"}})
	sid, err := svc.Containers.ExecStart(c.ID, app.ExecRequest{Cmd: []string{"cat"}, Interactive: true})
	if err != nil {
		t.Fatal(err)
	}
	svc.Containers.Ready(sid)
	for _, s := range []string{"hello ", "world\n"} {
		if err := svc.Containers.SessionInput(sid, base64.StdEncoding.EncodeToString([]byte(s))); err != nil {
			t.Fatal(err)
		}
	}
	if err := svc.Containers.SessionResize(sid, 40, 120); err != nil {
		t.Fatal(err)
	}
	if err := svc.Containers.SessionCloseInput(sid); err != nil {
		t.Fatal(err)
	}
	evs := rec.waitFor(t, "session-exit:"+sid)
	var out strings.Builder
	for _, e := range evs {
		if e.name == "session:"+sid {
			o := e.data.(app.SessionOutput)
			b, _ := base64.StdEncoding.DecodeString(o.Data)
			out.Write(b)
		}
		if e.name == "session-exit:"+sid && e.data.(app.SessionExit).Code != 0 {
			t.Errorf("exit %+v", e.data)
		}
	}
	if out.String() != "hello world\n" {
		t.Errorf("output %q", out.String())
	}
	if err := svc.Containers.SessionInput(sid, "aGk="); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("input after exit: %v, want not_found", err)
	}
	if _, err := svc.Containers.ExecStart(c.ID, app.ExecRequest{Cmd: []string{"nosuch"}}); app.CodeOf(err) != app.CodeCommandNotFound {
		t.Errorf("exec of a missing command: %v (%s)", err, app.CodeOf(err))
	}
}

func TestErrorsCarryCodes(t *testing.T) {
	svc, _, _ := setup(t)
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"inspect missing", second(svc.Containers.Inspect("nope")), app.CodeNotFound},
		{"empty id", svc.Containers.Start(""), app.CodeInvalid},
		{"bad port", second(svc.Containers.Create(app.RunRequest{Image: "busybox", Ports: []string{"x:y"}})), app.CodeInvalid},
		{"missing image", second(svc.Containers.Create(app.RunRequest{Image: "nosuch"})), app.CodeNotFound},
		{"bad signal", svc.Containers.Kill("x", "SIGNOPE"), app.CodeInvalid},
		{"bad save format", svc.Images.Save([]string{"busybox"}, "/tmp/x.tar", "zip"), app.CodeInvalid},
	}
	if _, err := svc.Containers.Create(app.RunRequest{Image: "busybox", Name: "dup"}); err != nil {
		t.Fatal(err)
	}
	_, err := svc.Containers.Create(app.RunRequest{Image: "busybox", Name: "dup"})
	tests = append(tests, struct {
		name string
		err  error
		want string
	}{"duplicate name", err, app.CodeConflict})
	for _, tt := range tests {
		if got := app.CodeOf(tt.err); got != tt.want {
			t.Errorf("%s: code %q (%v), want %q", tt.name, got, tt.err, tt.want)
		}
		var e *app.Error
		if !errors.As(tt.err, &e) || e.Message == "" {
			t.Errorf("%s: %v is not an *app.Error with a message", tt.name, tt.err)
		}
	}
}

func second[T any](_ T, err error) error { return err }

func TestPullProgressIsThrottled(t *testing.T) {
	svc, _, rec := setup(t)
	if _, err := svc.Images.Pull("busybox", "", "p1"); err != nil {
		t.Fatal(err)
	}
	evs := rec.waitFor(t, "progress:p1")
	var last app.Progress
	n := 0
	for _, e := range evs {
		if e.name == "progress:p1" {
			last = e.data.(app.Progress)
			n++
		}
	}
	if last.Status != "done" || last.Phase != "pull" || last.Done != 100 {
		t.Errorf("last progress %+v, want done 100/100 in phase pull", last)
	}
	if n >= 12 {
		t.Errorf("%d progress events for 12 reports in a burst: not throttled", n)
	}
}

func TestStatsAndEventsSubscriptions(t *testing.T) {
	svc, fake, rec := setup(t)
	evName, err := svc.System.SubscribeEvents()
	if err != nil {
		t.Fatal(err)
	}
	svc.Containers.Ready(evName)
	time.Sleep(20 * time.Millisecond)
	c, _ := svc.Containers.Run(app.RunRequest{Image: "busybox", Cmd: []string{"sleep"}})
	stName, err := svc.Containers.SubscribeStats(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	svc.Containers.Ready(stName)
	rec.waitFor(t, stName)
	evs := rec.waitFor(t, evName)
	actions := ""
	for _, e := range evs {
		if e.name == evName {
			for _, ev := range e.data.([]app.Event) {
				actions += ev.Action + " "
			}
		}
	}
	if !strings.Contains(actions, "create start") {
		t.Errorf("events %q, want create and start", actions)
	}
	if err := svc.Containers.Stop(c.ID, 0); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, stName+":end")
	svc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for fake.ActiveStreams.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := fake.ActiveStreams.Load(); n != 0 {
		t.Errorf("%d streams still run after Close", n)
	}
}

// EventPayloads declares the payload type of every kind of event the services emit (the generated
// TypeScript relies on it): each event emitted has the declared type, and every kind is emitted.
func TestEventPayloadsAreWhatIsEmitted(t *testing.T) {
	svc, fake, rec := setup(t)
	evName, err := svc.System.SubscribeEvents()
	if err != nil {
		t.Fatal(err)
	}
	svc.Containers.Ready(evName)
	if _, err := svc.Images.Pull("busybox", "", "p1"); err != nil {
		t.Fatal(err)
	}
	c, err := svc.Containers.Run(app.RunRequest{Image: "busybox", Cmd: []string{"sleep"}})
	if err != nil {
		t.Fatal(err)
	}
	fake.AddLogs(c.ID, 3, 10)
	var names []string
	for _, sub := range []func(string) (string, error){
		func(id string) (string, error) { return svc.Containers.SubscribeLogs(id, app.LogQuery{}) },
		svc.Containers.SubscribeConsole, svc.Containers.SubscribeStats,
	} {
		name, err := sub(c.ID)
		if err != nil {
			t.Fatal(err)
		}
		svc.Containers.Ready(name)
		names = append(names, name)
	}
	sid, err := svc.Containers.ExecStart(c.ID, app.ExecRequest{Cmd: []string{"cat"}, Interactive: true})
	if err != nil {
		t.Fatal(err)
	}
	svc.Containers.Ready(sid)
	if err := svc.Containers.SessionInput(sid, base64.StdEncoding.EncodeToString([]byte("hi"))); err != nil {
		t.Fatal(err)
	}
	if err := svc.Containers.SessionCloseInput(sid); err != nil {
		t.Fatal(err)
	}
	for _, n := range append(names, evName, "progress:p1", "session:"+sid, "session-exit:"+sid, names[0]+":end") {
		rec.waitFor(t, n)
	}
	rec.mu.Lock()
	evs := append([]recorded(nil), rec.events...)
	rec.mu.Unlock()
	payloads := app.EventPayloads()
	seen := map[string]bool{}
	for _, e := range evs {
		kind, _, _ := strings.Cut(e.name, ":")
		if strings.HasSuffix(e.name, ":end") {
			kind = "end"
		}
		want, ok := payloads[kind]
		if !ok {
			t.Errorf("event %q: kind %q is not in EventPayloads", e.name, kind)
			continue
		}
		seen[kind] = true
		if got, want := reflect.TypeOf(e.data), reflect.TypeOf(want); got != want {
			t.Errorf("event %q carries %v, EventPayloads says %v", e.name, got, want)
		}
	}
	for kind := range payloads {
		if !seen[kind] {
			t.Errorf("EventPayloads declares %q, which was not emitted", kind)
		}
	}
}
