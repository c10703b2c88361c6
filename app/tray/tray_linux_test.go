//go:build linux

package tray

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// privateBus starts a dbus-daemon for the test and points
// DBUS_SESSION_BUS_ADDRESS at it.
func privateBus(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		t.Skip("dbus-daemon not installed (make setup installs it)")
	}
	sock := filepath.Join(t.TempDir(), "bus")
	cmd := exec.Command("dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1", "--address=unix:path="+sock)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting dbus-daemon: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the bus address: %v", err)
	}
	addr := strings.TrimSpace(line)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", addr)
	return addr
}

// watcher is a minimal org.kde.StatusNotifierWatcher: it records registrations.
type watcher struct {
	mu         sync.Mutex // guards registered
	registered []string   // "sender path"
	notify     chan struct{}
}

func (w *watcher) RegisterStatusNotifierItem(sender dbus.Sender, service string) *dbus.Error {
	w.mu.Lock()
	w.registered = append(w.registered, string(sender)+" "+service)
	w.mu.Unlock()
	select {
	case w.notify <- struct{}{}:
	default:
	}
	return nil
}

// layoutNode is a decoded com.canonical.dbusmenu layout.
type layoutNode struct {
	ID       int32
	Props    map[string]dbus.Variant
	Children []layoutNode
}

func (n layoutNode) label() string {
	if v, ok := n.Props["type"]; ok && v.Value() == "separator" {
		return "---"
	}
	s, _ := n.Props["label"].Value().(string)
	if e, ok := n.Props["enabled"].Value().(bool); ok && !e {
		s = "(" + s + ")"
	}
	return s
}

// render is the menu as indented lines, for comparison.
func (n layoutNode) render(depth int, b *strings.Builder) {
	for _, c := range n.Children {
		fmt.Fprintf(b, "%s%s\n", strings.Repeat("  ", depth), c.label())
		c.render(depth+1, b)
	}
}

func (n layoutNode) find(path ...string) (layoutNode, bool) {
	if len(path) == 0 {
		return n, true
	}
	for _, c := range n.Children {
		if c.label() == path[0] {
			return c.find(path[1:]...)
		}
	}
	return layoutNode{}, false
}

func decodeLayout(v []interface{}) layoutNode {
	n := layoutNode{ID: v[0].(int32), Props: v[1].(map[string]dbus.Variant)}
	for _, c := range v[2].([]dbus.Variant) {
		n.Children = append(n.Children, decodeLayout(c.Value().([]interface{})))
	}
	return n
}

func getLayout(t *testing.T, obj dbus.BusObject) layoutNode {
	t.Helper()
	var layout layoutNode
	// systray answers the first GetLayout after a change one level deep:
	// ask twice.
	for i := 0; i < 2; i++ {
		var raw []interface{}
		call := obj.Call("com.canonical.dbusmenu.GetLayout", 0, int32(0), int32(-1), []string{})
		if call.Err != nil {
			t.Fatalf("GetLayout: %v", call.Err)
		}
		if len(call.Body) != 2 {
			t.Fatalf("GetLayout reply %#v", call.Body)
		}
		raw, _ = call.Body[1].([]interface{}) // Body[0] is the revision
		layout = decodeLayout(raw)
	}
	return layout
}

// The real Linux tray on a private session bus with a fake watcher (the
// role a desktop's tray plays): it registers, publishes the menu over
// dbusmenu, routes clicks to the model, follows Refresh, and goes away.
func TestLinuxTrayOverDBus(t *testing.T) {
	privateBus(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	model := newFakeModel(Item{ID: "id-web", Name: "web", Image: "nginx:latest", State: "running"})

	// No watcher yet: the desktop has no tray.
	if _, err := Run(ctx, model, nil); !errors.Is(err, ErrNoTray) {
		t.Fatalf("Run without a watcher: err = %v, want ErrNoTray", err)
	}

	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	w := &watcher{notify: make(chan struct{}, 1)}
	if err := conn.Export(w, "/StatusNotifierWatcher", "org.kde.StatusNotifierWatcher"); err != nil {
		t.Fatal(err)
	}
	if reply, err := conn.RequestName(watcherName, dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("owning %s: %v %v", watcherName, reply, err)
	}

	tr, err := Run(ctx, model, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if _, err := Run(ctx, model, nil); !errors.Is(err, ErrBusy) {
		t.Fatalf("second Run: err = %v, want ErrBusy", err)
	}
	select {
	case <-w.notify:
	case <-time.After(10 * time.Second):
		t.Fatal("the tray never registered with the watcher")
	}
	w.mu.Lock()
	reg := w.registered[0]
	w.mu.Unlock()
	sender := strings.Fields(reg)[0]
	if !strings.HasSuffix(reg, " /StatusNotifierItem") {
		t.Fatalf("registration %q", reg)
	}

	item := conn.Object(sender, "/StatusNotifierItem")
	title, err := item.GetProperty("org.kde.StatusNotifierItem.Title")
	if err != nil || title.Value() != "Skiff" {
		t.Fatalf("Title property %v, %v", title, err)
	}
	pix, err := item.GetProperty("org.kde.StatusNotifierItem.IconPixmap")
	if err != nil || !strings.Contains(pix.Signature().String(), "ay") {
		t.Fatalf("IconPixmap %v, %v", pix.Signature(), err)
	}

	menuObj := conn.Object(sender, "/StatusNotifierItem/menu")
	var b strings.Builder
	getLayout(t, menuObj).render(0, &b)
	want := `(1 container running)
---
web
  (nginx:latest · running)
  ---
  Stop
  Restart
  Open logs
---
Open Skiff
Use Skiff for docker commands
Install command-line tool…
---
Quit Skiff
`
	if b.String() != want {
		t.Fatalf("menu over D-Bus:\n%s\nwant\n%s", b.String(), want)
	}

	// Click "Open logs" of web, as the desktop would.
	logs, ok := getLayout(t, menuObj).find("web", "Open logs")
	if !ok {
		t.Fatal("no web → Open logs entry")
	}
	if call := menuObj.Call("com.canonical.dbusmenu.Event", 0, logs.ID, "clicked", dbus.MakeVariant(""), uint32(0)); call.Err != nil {
		t.Fatalf("Event: %v", call.Err)
	}
	if a := model.next(t); a != (Action{ActionOpenLogs, "id-web"}) {
		t.Fatalf("model got %#v", a)
	}

	// A new container shows up after Refresh.
	model.set(Item{ID: "id-web", Name: "web", State: "running"}, Item{ID: "id-db", Name: "db", State: "paused"})
	tr.Refresh()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := getLayout(t, menuObj).find("db (paused)", "Stop"); ok {
			break
		}
		if time.Now().After(deadline) {
			b.Reset()
			getLayout(t, menuObj).render(0, &b)
			t.Fatalf("menu not refreshed:\n%s", b.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	quit, _ := getLayout(t, menuObj).find("Quit Skiff")
	if call := menuObj.Call("com.canonical.dbusmenu.Event", 0, quit.ID, "clicked", dbus.MakeVariant(""), uint32(0)); call.Err != nil {
		t.Fatalf("Event: %v", call.Err)
	}
	if a := model.next(t); a.Kind != ActionQuit {
		t.Fatalf("model got %#v", a)
	}

	// Cancelling removes the item from the bus.
	cancel()
	deadline = time.Now().Add(10 * time.Second)
	for {
		var has bool
		if err := conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, sender).Store(&has); err != nil {
			t.Fatal(err)
		}
		if !has {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the tray's connection is still on the bus after cancel")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
