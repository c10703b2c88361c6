package engine

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// A directory of a bind source that the guest swaps for a symbolic link to another host directory
// while the watcher walks the tree (between its look at the directory and the watch) ends up not
// watched, nor is a link that was there all along: no event from the other directory arrives.
func TestMountWatcherFollowsNoLink(t *testing.T) {
	root, _ := filepath.EvalSymlinks(t.TempDir())
	outside, _ := filepath.EvalSymlinks(t.TempDir())
	sub, deep := filepath.Join(root, "sub"), filepath.Join(root, "keep", "deep")
	for _, d := range []string{sub, filepath.Join(sub, "below"), deep} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	mw := &mountWatcher{w: w}
	swapped := false
	mw.add = func(p string) error {
		if p == sub { // what a guest can do between the walk's look at sub and the watch
			if err := os.Rename(sub, sub+".old"); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(outside, sub); err != nil {
				t.Fatal(err)
			}
			swapped = true
		}
		return w.Add(p)
	}
	mw.addTree(root)
	if !swapped {
		t.Fatal("the walk never added sub")
	}
	list := w.WatchList()
	for _, want := range []string{root, filepath.Join(root, "keep"), deep} {
		if !slices.Contains(list, want) {
			t.Errorf("%s not watched: %q", want, list)
		}
	}
	if slices.Contains(list, sub) || slices.Contains(list, filepath.Join(root, "link")) || mw.dirs != 3 {
		t.Errorf("watched through a link: %q (%d dirs)", list, mw.dirs)
	}
	for len(w.Events) > 0 { // the swap's own events in root
		<-w.Events
	}
	if err := os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(deep, "seen.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(2 * time.Second)
	for {
		select {
		case ev := <-w.Events:
			if strings.Contains(ev.Name, "secret") {
				t.Fatalf("an event from the other directory: %v", ev)
			}
			if ev.Name == filepath.Join(deep, "seen.txt") {
				return
			}
		case <-timeout:
			t.Fatal("no event for a write in a watched directory")
		}
	}
}
