//go:build linux

package tray

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"sync"
	"sync/atomic"

	"fyne.io/systray"
	"github.com/godbus/dbus/v5"
	"go.uber.org/zap"
)

// watcherName is the D-Bus name of the desktop's StatusNotifierItem host
// (KDE, GNOME with the AppIndicator extension, waybar, …).
const watcherName = "org.kde.StatusNotifierWatcher"

// running: fyne.io/systray is a process-wide singleton, so one tray at a time.
var running atomic.Bool

// linuxTray draws the menu with fyne.io/systray (pure D-Bus, no GTK).
type linuxTray struct {
	log   *zap.Logger
	click func(Action)
	end   func()

	mu sync.Mutex // serialises show and close against each other
}

func newPlatform(ctx context.Context, log *zap.Logger, click func(Action)) (platform, error) {
	if err := probeWatcher(ctx); err != nil {
		return nil, err
	}
	if !running.CompareAndSwap(false, true) {
		return nil, ErrBusy
	}
	ready := make(chan struct{})
	start, end := systray.RunWithExternalLoop(func() { close(ready) }, nil)
	start() // connects to the session bus and registers with the watcher
	select {
	case <-ready:
	case <-ctx.Done():
		end()
		running.Store(false)
		return nil, ctx.Err()
	}
	systray.SetIcon(icon())
	systray.SetTitle("Skiff")
	systray.SetTooltip("Skiff")
	return &linuxTray{log: log, click: click, end: end}, nil
}

// probeWatcher reports ErrNoTray unless a StatusNotifierItem host is on the
// session bus (a private connection, so systray's shared one is untouched).
func probeWatcher(ctx context.Context) error {
	conn, err := dbus.ConnectSessionBus(dbus.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("%w: connecting to the D-Bus session bus: %v", ErrNoTray, err)
	}
	defer conn.Close()
	var has bool
	if err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, watcherName).Store(&has); err != nil {
		return fmt.Errorf("%w: asking the session bus for %s: %v", ErrNoTray, watcherName, err)
	}
	if !has {
		return fmt.Errorf("%w: nothing owns %s on the session bus (no system tray in this desktop)", ErrNoTray, watcherName)
	}
	return nil
}

func (l *linuxTray) show(entries []Entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	systray.ResetMenu() // closes the old items' ClickedCh, ending their goroutines
	l.add(entries, nil)
}

// add creates entries under parent (nil: the top level).
func (l *linuxTray) add(entries []Entry, parent *systray.MenuItem) {
	for _, e := range entries {
		if e.Separator {
			if parent == nil {
				systray.AddSeparator()
			} else {
				parent.AddSeparator()
			}
			continue
		}
		var item *systray.MenuItem
		if parent == nil {
			item = systray.AddMenuItem(sanitize(e.Title), "")
		} else {
			item = parent.AddSubMenuItem(sanitize(e.Title), "")
		}
		if !e.Enabled {
			item.Disable()
		}
		if len(e.Children) > 0 {
			l.add(e.Children, item)
		}
		if e.Action.Kind != ActionNone {
			go func(ch <-chan struct{}, a Action) {
				for range ch {
					l.click(a)
				}
			}(item.ClickedCh, e.Action)
		}
	}
}

func (l *linuxTray) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	systray.ResetMenu()
	l.end()
	running.Store(false)
}

// icon is the tray icon: a small sail drawn in code, so no binary asset.
func icon() []byte {
	const n = 32
	img := image.NewNRGBA(image.Rect(0, 0, n, n))
	sail := color.NRGBA{0x2b, 0x6c, 0xd6, 0xff}
	hull := color.NRGBA{0x1f, 0x2a, 0x3a, 0xff}
	for y := 4; y < 22; y++ { // a right triangle: the sail
		for x := 16; x < 16+(y-4)*12/18+1; x++ {
			img.Set(x, y, sail)
		}
	}
	for y := 23; y < 28; y++ { // the hull, narrowing towards the keel
		for x := 6 + (y - 23); x < 27-(y-23); x++ {
			img.Set(x, y, hull)
		}
	}
	var b bytes.Buffer
	_ = png.Encode(&b, img) // encoding an in-memory image cannot fail
	return b.Bytes()
}
