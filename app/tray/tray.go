// Package tray is Skiff's menu-bar (status) item: the running containers,
// each with Stop / Restart / Open logs, then Open Skiff and Quit.
//
// The menu is built in pure Go (menu.go) from a Model the app implements on
// top of its services, and shown by a small platform layer: an NSStatusItem
// on macOS (tray_darwin.go/.m, on the main queue, so it lives alongside the
// Wails run loop), a StatusNotifierItem over D-Bus on Linux (fyne.io/systray;
// ErrNoTray when the desktop has no tray host), ErrNotSupported elsewhere.
//
// Usage, once the app's window is up:
//
//	t, err := tray.Run(ctx, model, log)
//	if err != nil {
//		log.Warn("no menu-bar item", zap.Error(err)) // carry on with the window alone
//	}
//	...
//	t.Refresh() // after container events; t is nil-safe
//
// The item goes away when ctx is done.
package tray

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"
)

var (
	// ErrNotSupported: this OS has no tray implementation.
	ErrNotSupported = errors.New("tray: not supported on this OS")
	// ErrNoTray: the desktop has nowhere to show a status item (Linux without
	// a StatusNotifierItem host on the session bus, or no session bus).
	ErrNoTray = errors.New("tray: no status-item host on this desktop")
	// ErrBusy: a tray is already running in this process (the Linux library
	// behind it is a process-wide singleton).
	ErrBusy = errors.New("tray: already running in this process")
)

// Item is one container as the menu shows it.
type Item struct {
	ID    string // container ID, passed back to Stop / Restart / OpenLogs
	Name  string // container name, the menu title
	Image string // image reference as the user gave it
	State string // engine state: "running", "paused", "restarting", …
}

// Model is what the menu shows and what its items do; the app implements it
// on top of its services. The tray calls Running on the platform's UI thread
// or a goroutine of its own, and every action on a goroutine of its own, so
// implementations must be safe for concurrent use. Errors are logged by the
// tray; the app shows its own feedback (notifications, the window) if it
// wants to.
type Model interface {
	// Running lists the containers to show: running, paused or restarting
	// ones. It is called on every Refresh and must return quickly (read the
	// engine's records, no VM round trips).
	Running() []Item
	// Stop stops container id gracefully (SIGTERM, then SIGKILL after the
	// default timeout). ctx is cancelled when the tray shuts down.
	Stop(ctx context.Context, id string) error
	// Restart stops and starts container id.
	Restart(ctx context.Context, id string) error
	// OpenLogs shows container id's logs (the app's window on its Logs tab).
	OpenLogs(ctx context.Context, id string) error
	// OpenWindow brings the main window to the front, creating it if needed.
	OpenWindow()
	// Quit ends the app (it should stop containers the way the app's own
	// Quit does). The tray removes its item when Run's ctx is done.
	Quit()
	// UseDockerContext makes the engine's Docker socket the Docker CLI's
	// current context (`skiff docker-context --use`) and tells the user.
	UseDockerContext(ctx context.Context) error
	// InstallCLI links the app's command-line tool into a directory on PATH
	// (app/clitool), asking the user first where that needs it, and tells
	// the user the outcome.
	InstallCLI(ctx context.Context) error
}

// pollInterval: the menu is also rebuilt this often in case a Refresh was
// missed (only re-rendered when the list changed).
const pollInterval = 10 * time.Second

// platform shows a menu; each implementation is one small file.
type platform interface {
	// show replaces the whole menu; clicks on actionable entries call the
	// click function given at creation with the entry's Action.
	show(entries []Entry)
	// close removes the item. Called once.
	close()
}

// Tray is a running menu-bar item. Its methods are safe for concurrent use
// and on a nil *Tray (which does nothing), so the app can keep one field
// whether or not the platform has a tray.
type Tray struct {
	ctx   context.Context
	model Model
	log   *zap.Logger
	plat  platform

	refresh chan struct{} // capacity 1: a pending refresh request

	mu    sync.Mutex // guards shown
	shown []Item     // what the menu shows now
}

// Run shows the menu-bar item for m until ctx is done. It returns once the
// item exists, or an error wrapping ErrNotSupported, ErrNoTray or ErrBusy
// (the app logs it and carries on with its window alone). log may be nil.
func Run(ctx context.Context, m Model, log *zap.Logger) (*Tray, error) {
	return run(ctx, m, log, newPlatform)
}

// run is Run with the platform layer injected (tests use a fake).
func run(ctx context.Context, m Model, log *zap.Logger, newPlat func(context.Context, *zap.Logger, func(Action)) (platform, error)) (*Tray, error) {
	if log == nil {
		log = zap.NewNop()
	}
	t := &Tray{ctx: ctx, model: m, log: log, refresh: make(chan struct{}, 1)}
	plat, err := newPlat(ctx, log, t.do)
	if err != nil {
		return nil, err
	}
	t.plat = plat
	t.update(true)
	go t.loop()
	return t, nil
}

// Refresh rebuilds the menu from Model.Running soon (asynchronously; calls
// in a burst coalesce).
func (t *Tray) Refresh() {
	if t == nil {
		return
	}
	select {
	case t.refresh <- struct{}{}:
	default:
	}
}

// loop owns the platform item's lifetime: refreshes, the safety poll, close.
func (t *Tray) loop() {
	poll := time.NewTicker(pollInterval)
	defer poll.Stop()
	for {
		select {
		case <-t.ctx.Done():
			t.plat.close()
			return
		case <-t.refresh:
			t.update(false)
		case <-poll.C:
			t.update(false)
		}
	}
}

// update re-renders the menu when the model's list changed (or always).
func (t *Tray) update(always bool) {
	items := t.model.Running()
	t.mu.Lock()
	same := !always && sameItems(items, t.shown)
	if !same {
		t.shown = items
	}
	t.mu.Unlock()
	if !same {
		t.plat.show(BuildMenu(items))
	}
}

// do runs a clicked entry's action on its own goroutine, so the platform's
// UI thread never waits for a container to stop.
func (t *Tray) do(a Action) {
	go func() {
		var err error
		switch a.Kind {
		case ActionStop:
			err = t.model.Stop(t.ctx, a.ID)
		case ActionRestart:
			err = t.model.Restart(t.ctx, a.ID)
		case ActionOpenLogs:
			err = t.model.OpenLogs(t.ctx, a.ID)
		case ActionOpenWindow:
			t.model.OpenWindow()
		case ActionQuit:
			t.model.Quit()
		case ActionDockerContext:
			err = t.model.UseDockerContext(t.ctx)
		case ActionInstallCLI:
			err = t.model.InstallCLI(t.ctx)
		default:
			return
		}
		if err != nil {
			t.log.Warn("tray action failed", zap.String("action", string(a.Kind)), zap.String("container", a.ID), zap.Error(err))
		}
		if a.Kind == ActionStop || a.Kind == ActionRestart {
			t.Refresh()
		}
	}()
}

func sameItems(a, b []Item) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
