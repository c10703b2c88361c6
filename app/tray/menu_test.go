package tray

import (
	"fmt"
	"reflect"
	"testing"
)

func TestBuildMenuEmpty(t *testing.T) {
	got := BuildMenu(nil)
	want := []Entry{
		{Title: "No containers running"},
		{Separator: true},
		{Title: "Open Skiff", Enabled: true, Action: Action{Kind: ActionOpenWindow}},
		{Title: "Use Skiff for docker commands", Enabled: true, Action: Action{Kind: ActionDockerContext}},
		{Title: "Install command-line tool…", Enabled: true, Action: Action{Kind: ActionInstallCLI}},
		{Separator: true},
		{Title: "Quit Skiff", Enabled: true, Action: Action{Kind: ActionQuit}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("BuildMenu(nil) =\n%#v\nwant\n%#v", got, want)
	}
}

func TestBuildMenuContainers(t *testing.T) {
	got := BuildMenu([]Item{
		{ID: "bbb", Name: "web", Image: "nginx:latest", State: "running"},
		{ID: "aaa", Name: "db", Image: "postgres:16", State: "paused"},
	})
	want := []Entry{
		{Title: "2 containers running"},
		{Separator: true},
		{Title: "db (paused)", Enabled: true, Children: []Entry{
			{Title: "postgres:16 · paused"},
			{Separator: true},
			{Title: "Stop", Enabled: true, Action: Action{ActionStop, "aaa"}},
			{Title: "Restart", Enabled: true, Action: Action{ActionRestart, "aaa"}},
			{Title: "Open logs", Enabled: true, Action: Action{ActionOpenLogs, "aaa"}},
		}},
		{Title: "web", Enabled: true, Children: []Entry{
			{Title: "nginx:latest · running"},
			{Separator: true},
			{Title: "Stop", Enabled: true, Action: Action{ActionStop, "bbb"}},
			{Title: "Restart", Enabled: true, Action: Action{ActionRestart, "bbb"}},
			{Title: "Open logs", Enabled: true, Action: Action{ActionOpenLogs, "bbb"}},
		}},
		{Separator: true},
		{Title: "Open Skiff", Enabled: true, Action: Action{Kind: ActionOpenWindow}},
		{Title: "Use Skiff for docker commands", Enabled: true, Action: Action{Kind: ActionDockerContext}},
		{Title: "Install command-line tool…", Enabled: true, Action: Action{Kind: ActionInstallCLI}},
		{Separator: true},
		{Title: "Quit Skiff", Enabled: true, Action: Action{Kind: ActionQuit}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("BuildMenu =\n%#v\nwant\n%#v", got, want)
	}
}

func TestBuildMenuDetails(t *testing.T) {
	tests := []struct {
		name  string
		item  Item
		title string
		first Entry // first child
	}{
		{"no name uses the short ID", Item{ID: "0123456789abcdef0123", State: "running"}, "0123456789ab", Entry{Title: "running"}},
		{"no image or state", Item{ID: "x", Name: "n"}, "n", Entry{Title: "Stop", Enabled: true, Action: Action{ActionStop, "x"}}},
		{"restarting is shown", Item{ID: "x", Name: "n", Image: "i", State: "restarting"}, "n (restarting)", Entry{Title: "i · restarting"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := BuildMenu([]Item{tt.item})
			if m[0].Title != "1 container running" {
				t.Errorf("header %q", m[0].Title)
			}
			c := m[2]
			if c.Title != tt.title || !reflect.DeepEqual(c.Children[0], tt.first) {
				t.Errorf("entry %q first child %#v; want %q %#v", c.Title, c.Children[0], tt.title, tt.first)
			}
		})
	}
}

func TestBuildMenuCapsContainers(t *testing.T) {
	var items []Item
	for i := 0; i < MaxContainers+5; i++ {
		items = append(items, Item{ID: fmt.Sprint(i), Name: fmt.Sprintf("c%02d", i), State: "running"})
	}
	m := BuildMenu(items)
	if len(m) != 2+MaxContainers+1+6 { // header, separator; containers; "more"; the 6 closing entries
		t.Fatalf("%d entries, want %d", len(m), 2+MaxContainers+1+6)
	}
	more := m[2+MaxContainers]
	if more.Title != "5 more…" || more.Action.Kind != ActionOpenWindow {
		t.Errorf("overflow entry %#v", more)
	}
	if m[0].Title != fmt.Sprintf("%d containers running", MaxContainers+5) {
		t.Errorf("header %q counts the hidden ones wrong", m[0].Title)
	}
}

func TestFlatten(t *testing.T) {
	flat, actions := flatten(BuildMenu([]Item{{ID: "id1", Name: "web\nx", Image: "nginx", State: "running"}}))
	want := []flatEntry{
		{Title: "1 container running", Tag: -1},
		{Separator: true, Tag: -1},
		{Title: "web x", Enabled: true, Depth: 0, Tag: -1},
		{Title: "nginx · running", Depth: 1, Tag: -1},
		{Separator: true, Depth: 1, Tag: -1},
		{Title: "Stop", Enabled: true, Depth: 1, Tag: 0},
		{Title: "Restart", Enabled: true, Depth: 1, Tag: 1},
		{Title: "Open logs", Enabled: true, Depth: 1, Tag: 2},
		{Separator: true, Tag: -1},
		{Title: "Open Skiff", Enabled: true, Tag: 3},
		{Title: "Use Skiff for docker commands", Enabled: true, Tag: 4},
		{Title: "Install command-line tool…", Enabled: true, Tag: 5},
		{Separator: true, Tag: -1},
		{Title: "Quit Skiff", Enabled: true, Tag: 6},
	}
	if !reflect.DeepEqual(flat, want) {
		t.Fatalf("flatten =\n%#v\nwant\n%#v", flat, want)
	}
	wantActions := []Action{{ActionStop, "id1"}, {ActionRestart, "id1"}, {ActionOpenLogs, "id1"}, {Kind: ActionOpenWindow}, {Kind: ActionDockerContext}, {Kind: ActionInstallCLI}, {Kind: ActionQuit}}
	if !reflect.DeepEqual(actions, wantActions) {
		t.Fatalf("actions = %#v, want %#v", actions, wantActions)
	}
}

func TestSanitize(t *testing.T) {
	if got := sanitize("a\x00b\tc\r\nd"); got != "ab c  d" {
		t.Fatalf("sanitize = %q", got)
	}
}
