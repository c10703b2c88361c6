package tray

import (
	"fmt"
	"sort"
	"strings"
)

// ActionKind names what a menu entry does.
type ActionKind string

const (
	ActionNone       ActionKind = ""
	ActionStop       ActionKind = "stop"
	ActionRestart    ActionKind = "restart"
	ActionOpenLogs   ActionKind = "logs"
	ActionOpenWindow ActionKind = "open"
	ActionQuit       ActionKind = "quit"
	// ActionDockerContext makes Skiff the Docker CLI's current context.
	ActionDockerContext ActionKind = "docker"
	// ActionInstallCLI links the app's command-line tool onto PATH.
	ActionInstallCLI ActionKind = "cli"
)

// Action is what clicking an entry does: a kind and, for container actions,
// the container's ID. Comparable, so menus compare in tests.
type Action struct {
	Kind ActionKind
	ID   string
}

// Entry is one line of the menu: a separator, a disabled label, a clickable
// item (Action set), or a submenu parent (Children set).
type Entry struct {
	Title     string
	Separator bool
	Enabled   bool
	Action    Action
	Children  []Entry
}

// MaxContainers is how many containers the menu lists before it ends with a
// "N more…" entry that opens the window.
const MaxContainers = 15

// BuildMenu is the whole menu for a list of containers, sorted by name:
//
//	2 containers running          (label)
//	─────
//	web ▸  nginx:latest · running (label)
//	       Stop / Restart / Open logs
//	…
//	─────
//	Open Skiff
//	Use Skiff for docker commands
//	Install command-line tool…
//	─────
//	Quit Skiff
func BuildMenu(items []Item) []Entry {
	sorted := append([]Item(nil), items...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })

	var m []Entry
	switch len(sorted) {
	case 0:
		m = append(m, label("No containers running"))
	case 1:
		m = append(m, label("1 container running"))
	default:
		m = append(m, label(fmt.Sprintf("%d containers running", len(sorted))))
	}
	if len(sorted) > 0 {
		m = append(m, separator())
	}
	for i, it := range sorted {
		if i == MaxContainers {
			m = append(m, Entry{Title: fmt.Sprintf("%d more…", len(sorted)-MaxContainers), Enabled: true, Action: Action{Kind: ActionOpenWindow}})
			break
		}
		m = append(m, containerEntry(it))
	}
	return append(m,
		separator(),
		Entry{Title: "Open Skiff", Enabled: true, Action: Action{Kind: ActionOpenWindow}},
		Entry{Title: "Use Skiff for docker commands", Enabled: true, Action: Action{Kind: ActionDockerContext}},
		Entry{Title: "Install command-line tool…", Enabled: true, Action: Action{Kind: ActionInstallCLI}},
		separator(),
		Entry{Title: "Quit Skiff", Enabled: true, Action: Action{Kind: ActionQuit}},
	)
}

func containerEntry(it Item) Entry {
	title := it.Name
	if title == "" {
		title = shortID(it.ID)
	}
	if it.State != "" && it.State != "running" {
		title += " (" + it.State + ")"
	}
	detail := it.Image
	if it.State != "" {
		if detail != "" {
			detail += " · "
		}
		detail += it.State
	}
	var children []Entry
	if detail != "" {
		children = append(children, label(detail), separator())
	}
	children = append(children,
		Entry{Title: "Stop", Enabled: true, Action: Action{Kind: ActionStop, ID: it.ID}},
		Entry{Title: "Restart", Enabled: true, Action: Action{Kind: ActionRestart, ID: it.ID}},
		Entry{Title: "Open logs", Enabled: true, Action: Action{Kind: ActionOpenLogs, ID: it.ID}},
	)
	return Entry{Title: title, Enabled: true, Children: children}
}

func label(s string) Entry { return Entry{Title: s} }
func separator() Entry     { return Entry{Separator: true} }

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// flatEntry is an Entry in depth-first order with its depth, the form the
// native layers build menus from (a submenu's children follow it at
// Depth+1). Tag indexes the actions table, -1 for none.
type flatEntry struct {
	Title     string
	Separator bool
	Enabled   bool
	Depth     int
	Tag       int
}

// flatten turns a menu into native-friendly lines and the table of actions
// their tags refer to.
func flatten(entries []Entry) ([]flatEntry, []Action) {
	var out []flatEntry
	var actions []Action
	var walk func([]Entry, int)
	walk = func(es []Entry, depth int) {
		for _, e := range es {
			tag := -1
			if e.Action.Kind != ActionNone {
				tag = len(actions)
				actions = append(actions, e.Action)
			}
			out = append(out, flatEntry{Title: sanitize(e.Title), Separator: e.Separator, Enabled: e.Enabled, Depth: depth, Tag: tag})
			walk(e.Children, depth+1)
		}
	}
	walk(entries, 0)
	return out, actions
}

// sanitize keeps a title on one line and free of NULs (C strings).
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case 0:
			return -1
		case '\n', '\r', '\t':
			return ' '
		}
		return r
	}, s)
}
