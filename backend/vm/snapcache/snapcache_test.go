//go:build linux || darwin

package snapcache

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// saveFile is a Build that writes one file, as a backend saves a template.
func saveFile(builds *atomic.Int32) Build {
	return func(ctx context.Context, tmp string) (string, error) {
		builds.Add(1)
		return "console=hvc0 skiff.template=1", os.WriteFile(filepath.Join(tmp, "state"), []byte("saved"), 0o644)
	}
}

// entries lists root's names, sorted.
func entries(t *testing.T, root string) []string {
	t.Helper()
	ents, err := os.ReadDir(root)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestGetBuildsOnceAndReuses(t *testing.T) {
	root := filepath.Join(t.TempDir(), "snapshots")
	c := New(root, 3, nil)
	var builds atomic.Int32
	ctx := context.Background()
	s, err := c.Get(ctx, "arm64-abc", saveFile(&builds))
	if err != nil {
		t.Fatal(err)
	}
	if s.Dir != filepath.Join(root, "arm64-abc") || s.Meta.Key != "arm64-abc" || s.Meta.Version != 3 ||
		s.Meta.Cmdline != "console=hvc0 skiff.template=1" || s.Meta.Created.IsZero() {
		t.Errorf("snapshot %+v", s)
	}
	if b, err := os.ReadFile(filepath.Join(s.Dir, "state")); err != nil || string(b) != "saved" {
		t.Errorf("the build's file: %q, %v", b, err)
	}
	s.Release()
	if st, err := os.Stat(root); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("the cache root must be private: %v %v", st.Mode(), err)
	}
	s2, err := c.Get(ctx, "arm64-abc", func(context.Context, string) (string, error) {
		t.Fatal("a complete snapshot was built again")
		return "", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s2.Release()
	if s2.Meta != s.Meta {
		t.Errorf("meta %+v, first %+v", s2.Meta, s.Meta)
	}
	if builds.Load() != 1 {
		t.Errorf("%d builds", builds.Load())
	}
	// Another protocol version does not use it: it is rebuilt.
	s3, err := New(root, 4, nil).Get(ctx, "arm64-abc", saveFile(&builds))
	if err != nil {
		t.Fatal(err)
	}
	s3.Release()
	if builds.Load() != 2 || s3.Meta.Version != 4 {
		t.Errorf("an old version's snapshot: %d builds, meta %+v", builds.Load(), s3.Meta)
	}
}

// Callers asking for one key at once (each its own open lock file, as
// separate processes) build it once; the others wait and use it.
func TestGetConcurrentBuildsOnce(t *testing.T) {
	root := t.TempDir()
	var builds atomic.Int32
	slow := func(ctx context.Context, tmp string) (string, error) {
		builds.Add(1)
		time.Sleep(200 * time.Millisecond)
		return "x", os.WriteFile(filepath.Join(tmp, "state"), nil, 0o644)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := New(root, 1, nil).Get(context.Background(), "k", slow)
			if err != nil {
				t.Error(err)
				return
			}
			s.Release()
		}()
	}
	wg.Wait()
	if builds.Load() != 1 {
		t.Errorf("%d builds of one key", builds.Load())
	}
}

// A build that fails, or whose caller gives up, leaves nothing that looks
// complete, and a waiter gives up when its ctx ends.
func TestFailedBuildLeavesNothing(t *testing.T) {
	root := t.TempDir()
	c := New(root, 1, nil)
	boom := errors.New("template died")
	_, err := c.Get(context.Background(), "k", func(ctx context.Context, tmp string) (string, error) {
		os.WriteFile(filepath.Join(tmp, "state"), []byte("half"), 0o644)
		return "", boom
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "building boot snapshot k") {
		t.Fatalf("err = %v", err)
	}
	if got := entries(t, root); len(got) != 1 || got[0] != "k.lock" {
		t.Errorf("a failed build left %q", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = c.Get(ctx, "k", func(ctx context.Context, tmp string) (string, error) {
		os.WriteFile(filepath.Join(tmp, "state"), []byte("half"), 0o644)
		<-ctx.Done()
		return "", ctx.Err()
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("interrupted build: err = %v", err)
	}
	if got := entries(t, root); len(got) != 1 {
		t.Errorf("an interrupted build left %q", got)
	}
	if _, err := c.Get(context.Background(), "k", func(context.Context, string) (string, error) { return "", nil }); err == nil {
		t.Error("a build without a command line made a snapshot")
	}

	// While one caller builds, another's ctx ends: it gives up waiting.
	building, done, finished := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		s, err := New(root, 1, nil).Get(context.Background(), "w", func(ctx context.Context, tmp string) (string, error) {
			close(building)
			<-done
			return "x", nil
		})
		if err == nil {
			s.Release()
		}
	}()
	<-building
	wctx, wcancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer wcancel()
	_, err = c.Get(wctx, "w", func(context.Context, string) (string, error) {
		t.Error("a second build while the first runs")
		return "x", nil
	})
	close(done)
	<-finished // its build's files are gone or in place before TempDir's cleanup
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting for another's build: err = %v", err)
	}
}

func TestBadKeys(t *testing.T) {
	c := New(t.TempDir(), 1, nil)
	for _, k := range []string{"", ".", "..", "a/b", "k.tmp-1", "k.lock"} {
		if _, err := c.Get(context.Background(), k, func(context.Context, string) (string, error) { return "x", nil }); !errors.Is(err, ErrBadKey) {
			t.Errorf("key %q: err = %v", k, err)
		}
	}
}

// Prune keeps the Max most recently used, never one in use, and removes an
// interrupted build's leftovers once nobody builds that key.
func TestPrune(t *testing.T) {
	root := t.TempDir()
	c := New(root, 1, nil)
	c.Max = 2
	var builds atomic.Int32
	ctx := context.Background()
	get := func(key string) *Snapshot {
		s, err := c.Get(ctx, key, saveFile(&builds))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	old := time.Now().Add(-time.Hour)
	held := get("held") // in use throughout
	os.Chtimes(filepath.Join(root, "held", "meta.json"), old, old)
	a := get("a")
	a.Release()
	os.Chtimes(filepath.Join(root, "a", "meta.json"), old.Add(time.Minute), old.Add(time.Minute))
	os.Mkdir(filepath.Join(root, "gone.tmp-123"), 0o700) // an interrupted build's
	b := get("b")                                        // prunes, keeping b and one more
	b.Release()
	got := strings.Join(entries(t, root), " ")
	if strings.Contains(got, "gone.tmp-") {
		t.Errorf("an interrupted build's leftovers stayed: %s", got)
	}
	// Max 2 keeps b and a, the most recent; held, older, stays while in use.
	for _, want := range []string{"a", "b", "held"} {
		if _, err := os.Stat(filepath.Join(root, want, "meta.json")); err != nil {
			t.Errorf("%s pruned: %v (left %s)", want, err, got)
		}
	}
	held.Release()
	c.Prune("b")
	if _, err := os.Stat(filepath.Join(root, "held")); !os.IsNotExist(err) {
		t.Errorf("the least recently used snapshot over Max stayed once released: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "a", "meta.json")); err != nil {
		t.Errorf("a recent snapshot was pruned: %v", err)
	}
	// A build under way (its key locked) keeps its temporary directory.
	s, err := c.Get(ctx, "busy", func(ctx context.Context, tmp string) (string, error) {
		c.Prune("")
		if _, err := os.Stat(tmp); err != nil {
			t.Errorf("pruning removed a build under way: %v", err)
		}
		return "x", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Release()
}

// A failed key boots cold for Retry and its snapshot is dropped unless in use.
func TestFailAndDrop(t *testing.T) {
	root := t.TempDir()
	c := New(root, 1, nil)
	var builds atomic.Int32
	s, err := c.Get(context.Background(), "k", saveFile(&builds))
	if err != nil {
		t.Fatal(err)
	}
	if c.Failed("k") {
		t.Fatal("a key that never failed is Failed")
	}
	c.Fail("k") // in use: stays
	if !c.Failed("k") || c.Failed("other") {
		t.Errorf("Failed(k) = %v, Failed(other) = %v", c.Failed("k"), c.Failed("other"))
	}
	if _, err := os.Stat(filepath.Join(root, "k", "meta.json")); err != nil {
		t.Errorf("a snapshot in use was dropped: %v", err)
	}
	s.Release()
	c.Drop("k")
	if _, err := os.Stat(filepath.Join(root, "k")); !os.IsNotExist(err) {
		t.Errorf("Drop left the snapshot: %v", err)
	}
	c.Drop("../escape") // ignored
}

func TestUsage(t *testing.T) {
	root := t.TempDir()
	c := New(root, 1, nil)
	if n, b := c.Usage(); n != 0 || b != 0 {
		t.Errorf("empty cache: %d entries, %d bytes", n, b)
	}
	for _, k := range []string{"a", "b"} {
		s, err := c.Get(context.Background(), k, func(ctx context.Context, tmp string) (string, error) {
			return "x", os.WriteFile(filepath.Join(tmp, "ram"), make([]byte, 64<<10), 0o644)
		})
		if err != nil {
			t.Fatal(err)
		}
		s.Release()
	}
	os.Mkdir(filepath.Join(root, "c.tmp-1"), 0o700) // incomplete: not counted
	n, b := c.Usage()
	if n != 2 || b < 2*64<<10 {
		t.Errorf("%d entries, %d bytes; want 2 and at least %d", n, b, 2*64<<10)
	}
}
