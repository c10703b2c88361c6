package bridge_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/app"
	"github.com/skiff-containers/skiff/app/apptest"
	"github.com/skiff-containers/skiff/app/bridge"
)

// recorder is a window's event sink: every event with its data as JSON.
type recorder struct {
	mu     sync.Mutex
	events []recorded
}

type recorded struct {
	name string
	data []byte
	raw  bool // the data came as the JSON it arrived in (json.RawMessage), not as Go values
}

func (r *recorder) Emit(name string, data any) {
	b, err := json.Marshal(data)
	if err != nil {
		panic(err)
	}
	_, raw := data.(json.RawMessage)
	r.mu.Lock()
	r.events = append(r.events, recorded{name, b, raw})
	r.mu.Unlock()
}

// named returns the events called name so far.
func (r *recorder) named(name string) [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out [][]byte
	for _, e := range r.events {
		if e.name == name {
			out = append(out, e.data)
		}
	}
	return out
}

// await waits until an event called name has come.
func (r *recorder) await(t *testing.T, name string) [][]byte {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if evs := r.named(name); len(evs) > 0 {
			return evs
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no %s event", name)
	return nil
}

// desktop records the windows a relay opened.
type desktop struct {
	mu      sync.Mutex
	windows []string
}

func (d *desktop) OpenLogsWindow(id string) error {
	d.mu.Lock()
	d.windows = append(d.windows, id)
	d.mu.Unlock()
	return nil
}

func (d *desktop) OpenFileDialog(string, string) (string, error) { return "/picked.tar", nil }

func call(t *testing.T, r *bridge.Relay, method string, params ...any) (json.RawMessage, error) {
	t.Helper()
	raw := make([]json.RawMessage, len(params))
	for i, p := range params {
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		raw[i] = b
	}
	return r.Call(method, raw)
}

func mustCall(t *testing.T, r *bridge.Relay, method string, params ...any) json.RawMessage {
	t.Helper()
	res, err := call(t, r, method, params...)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	return res
}

// A window behaves the same whether its engine is in its process or another's: calls, progress,
// events held until the window listens, sessions, errors with their codes; its own windows and
// dialogs it serves itself.
func TestRelay(t *testing.T) {
	for _, remote := range []bool{false, true} {
		name := "local"
		if remote {
			name = "remote"
		}
		t.Run(name, func(t *testing.T) {
			fake := apptest.NewFake()
			sink, d := &recorder{}, &desktop{}
			var r *bridge.Relay
			if remote {
				ctx, cancel := context.WithCancel(context.Background())
				t.Cleanup(cancel)
				local := app.New(nil, sink, app.WithDesktop(d))
				t.Cleanup(local.Close)
				r = bridge.NewRemoteRelay(ctx, dial(t, serveUnix(t, fake)), local, sink)
			} else {
				svc := app.New(fake, sink, app.WithDesktop(d))
				t.Cleanup(svc.Close)
				r = bridge.NewLocalRelay(svc)
			}
			exerciseRelay(t, r, fake, sink, d)
			if remote { // relayed as they came: the window's process decodes no event
				sink.mu.Lock()
				defer sink.mu.Unlock()
				for _, e := range sink.events {
					if !e.raw {
						t.Errorf("event %s reached the window decoded and encoded again", e.name)
					}
				}
			}
		})
	}
}

func exerciseRelay(t *testing.T, r *bridge.Relay, fake *apptest.Fake, sink *recorder, d *desktop) {
	var c app.Container
	res := mustCall(t, r, "Containers.Create", app.RunRequest{Image: "busybox", Name: "r", Cmd: []string{"sleep"}, ProgressID: "p1"})
	if err := json.Unmarshal(res, &c); err != nil || c.Name != "r" {
		t.Fatalf("created %s: %v", res, err)
	}
	if evs := sink.await(t, "progress:p1"); !strings.Contains(string(evs[0]), `"total":100`) {
		t.Errorf("progress %s", evs[0])
	}
	mustCall(t, r, "Containers.Start", "r")
	fake.AddLogs(c.ID, 100, 20)

	var logs string
	json.Unmarshal(mustCall(t, r, "Containers.SubscribeLogs", "r", app.LogQuery{}), &logs)
	time.Sleep(200 * time.Millisecond)
	if evs := sink.named(logs); len(evs) != 0 {
		t.Fatalf("%d events of %s before the window listens", len(evs), logs)
	}
	mustCall(t, r, "Containers.Ready", logs)
	sink.await(t, logs+":end")
	n := 0
	for _, b := range sink.named(logs) {
		ls, err := app.DecodeLogLines(b)
		if err != nil {
			t.Fatal(err)
		}
		n += len(ls)
	}
	if n != 100 {
		t.Errorf("%d log lines, want 100", n)
	}

	var sid string
	json.Unmarshal(mustCall(t, r, "Containers.ExecStart", "r", app.ExecRequest{Cmd: []string{"cat"}, Interactive: true}), &sid)
	mustCall(t, r, "Containers.Ready", sid)
	mustCall(t, r, "Containers.SessionInput", sid, base64.StdEncoding.EncodeToString([]byte("relayed\n")))
	mustCall(t, r, "Containers.SessionCloseInput", sid)
	var exit app.SessionExit
	if err := json.Unmarshal(sink.await(t, "session-exit:"+sid)[0], &exit); err != nil || exit.Code != 0 {
		t.Errorf("exit %+v %v", exit, err)
	}
	var out []byte
	for _, b := range sink.named("session:" + sid) {
		var o app.SessionOutput
		json.Unmarshal(b, &o)
		data, _ := base64.StdEncoding.DecodeString(o.Data)
		out = append(out, data...)
	}
	if string(out) != "relayed\n" {
		t.Errorf("session output %q", out)
	}

	var stats string
	json.Unmarshal(mustCall(t, r, "Containers.SubscribeStats", "r"), &stats)
	mustCall(t, r, "Containers.Unsubscribe", stats)
	if _, err := call(t, r, "Containers.Unsubscribe", stats); app.CodeOf(err) != app.CodeNotFound {
		t.Errorf("a second Unsubscribe: %v, want not_found (the first stopped it on the engine)", err)
	}

	mustCall(t, r, "System.OpenLogsWindow", "r")
	if len(d.windows) != 1 || d.windows[0] != "r" {
		t.Errorf("windows opened here: %v", d.windows)
	}
	if _, err := call(t, r, "Containers.Inspect", "nope"); app.CodeOf(err) != app.CodeNotFound {
		t.Errorf("inspect of a missing container: %v", err)
	}
	if _, err := call(t, r, "Containers.Nope"); app.CodeOf(err) != app.CodeNotFound {
		t.Errorf("an unknown method: %v", err)
	}
}
