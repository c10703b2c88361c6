package tray

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
)

// fakeModel records calls; Running returns whatever the test set.
type fakeModel struct {
	mu      sync.Mutex // guards all fields
	items   []Item
	calls   []Action
	stopErr error
	called  chan Action
}

func newFakeModel(items ...Item) *fakeModel {
	return &fakeModel{items: items, called: make(chan Action, 16)}
}

func (f *fakeModel) set(items ...Item) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.items = items
}

func (f *fakeModel) Running() []Item {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Item(nil), f.items...)
}

func (f *fakeModel) record(a Action) error {
	f.mu.Lock()
	f.calls = append(f.calls, a)
	err := f.stopErr
	f.mu.Unlock()
	f.called <- a
	if a.Kind == ActionStop {
		return err
	}
	return nil
}

func (f *fakeModel) Stop(_ context.Context, id string) error { return f.record(Action{ActionStop, id}) }
func (f *fakeModel) Restart(_ context.Context, id string) error {
	return f.record(Action{ActionRestart, id})
}
func (f *fakeModel) OpenLogs(_ context.Context, id string) error {
	return f.record(Action{ActionOpenLogs, id})
}
func (f *fakeModel) OpenWindow() { _ = f.record(Action{Kind: ActionOpenWindow}) }
func (f *fakeModel) Quit()       { _ = f.record(Action{Kind: ActionQuit}) }
func (f *fakeModel) UseDockerContext(context.Context) error {
	return f.record(Action{Kind: ActionDockerContext})
}
func (f *fakeModel) InstallCLI(context.Context) error {
	return f.record(Action{Kind: ActionInstallCLI})
}

func (f *fakeModel) next(t *testing.T) Action {
	t.Helper()
	select {
	case a := <-f.called:
		return a
	case <-time.After(5 * time.Second):
		t.Fatal("no model call")
		return Action{}
	}
}

// fakePlatform keeps the shown menus; click simulates a user's click.
type fakePlatform struct {
	shown  chan []Entry
	closed chan struct{}
	click  func(Action)
}

func (p *fakePlatform) show(e []Entry) { p.shown <- e }
func (p *fakePlatform) close()         { close(p.closed) }

func (p *fakePlatform) next(t *testing.T) []Entry {
	t.Helper()
	select {
	case e := <-p.shown:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("menu not re-rendered")
		return nil
	}
}

func TestTrayLifecycle(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	model := newFakeModel(Item{ID: "a", Name: "web", Image: "nginx", State: "running"})
	fp := &fakePlatform{shown: make(chan []Entry, 8), closed: make(chan struct{})}
	tr, err := run(ctx, model, nil, func(_ context.Context, _ *zap.Logger, click func(Action)) (platform, error) {
		fp.click = click
		return fp, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if m := fp.next(t); m[0].Title != "1 container running" || m[2].Title != "web" {
		t.Fatalf("first menu %#v", m)
	}

	// Refresh with no change does not re-render; a change does.
	tr.Refresh()
	model.set(Item{ID: "a", Name: "web", State: "running"}, Item{ID: "b", Name: "api", State: "running"})
	tr.Refresh()
	if m := fp.next(t); m[0].Title != "2 containers running" || m[2].Title != "api" {
		t.Fatalf("refreshed menu %#v", m)
	}
	select {
	case m := <-fp.shown:
		t.Fatalf("extra render %#v", m)
	case <-time.After(50 * time.Millisecond):
	}

	// Clicks reach the model; a failed Stop is logged, and the menu is
	// refreshed after Stop so the stopped container disappears.
	model.mu.Lock()
	model.stopErr = errors.New("boom")
	model.mu.Unlock()
	model.set(Item{ID: "b", Name: "api", State: "running"})
	fp.click(Action{ActionStop, "a"})
	if a := model.next(t); a != (Action{ActionStop, "a"}) {
		t.Fatalf("model got %#v", a)
	}
	if m := fp.next(t); m[0].Title != "1 container running" {
		t.Fatalf("menu after stop %#v", m)
	}
	for _, a := range []Action{{ActionRestart, "b"}, {ActionOpenLogs, "b"}, {Kind: ActionOpenWindow}, {Kind: ActionDockerContext}, {Kind: ActionInstallCLI}, {Kind: ActionQuit}} {
		fp.click(a)
		if got := model.next(t); got != a {
			t.Fatalf("click %#v: model got %#v", a, got)
		}
	}

	cancel()
	select {
	case <-fp.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("platform item not closed after cancel")
	}
}

func TestRunPlatformError(t *testing.T) {
	_, err := run(context.Background(), newFakeModel(), nil, func(context.Context, *zap.Logger, func(Action)) (platform, error) {
		return nil, ErrNoTray
	})
	if !errors.Is(err, ErrNoTray) {
		t.Fatalf("err = %v", err)
	}
	var nilTray *Tray
	nilTray.Refresh() // must not panic
}
