package images_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/images"
	"github.com/skiff-containers/skiff/internal/testutil"
)

// fixtures are built once per test binary: building them runs dpkg-deb and gzip.
var (
	fixturesOnce sync.Once
	fixtures     *testutil.Images
	fixturesErr  error
)

func testImages(t *testing.T) *testutil.Images {
	t.Helper()
	if _, err := testutil.DebsDir(); err != nil {
		t.Skipf("test images: %v (run `make setup`, which runs scripts/fetch-debs.sh)", err)
	}
	fixturesOnce.Do(func() {
		dir, _ := testutil.DebsDir()
		fixtures, fixturesErr = testutil.BuildImages(dir)
	})
	if fixturesErr != nil {
		t.Fatalf("building test images: %v", fixturesErr)
	}
	return fixtures
}

// counter counts registry requests by "METHOD path".
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		if c.n == nil {
			c.n = map[string]int{}
		}
		c.n[r.Method+" "+r.URL.Path]++
		c.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

// get returns the count of requests whose "METHOD path" contains every one of parts.
func (c *counter) get(parts ...string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	total := 0
outer:
	for k, v := range c.n {
		for _, p := range parts {
			if !strings.Contains(k, p) {
				continue outer
			}
		}
		total += v
	}
	return total
}

func (c *counter) reset() {
	c.mu.Lock()
	c.n = nil
	c.mu.Unlock()
}

// registry serves the test images (busybox:latest, multilayer:latest) through wrap, if not nil,
// behind a request counter.
func registry(t *testing.T, wrap func(http.Handler) http.Handler) (string, *counter) {
	t.Helper()
	imgs := testImages(t)
	c := &counter{}
	h := testutil.RegistryHandler()
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(c.wrap(h))
	t.Cleanup(srv.Close)
	host := srv.Listener.Addr().String()
	if err := testutil.PushImages(context.Background(), host, imgs); err != nil {
		t.Fatal(err)
	}
	c.reset()
	return host, c
}

func openStore(t *testing.T, opts ...images.Option) *images.Store {
	t.Helper()
	s, err := images.Open(filepath.Join(t.TempDir(), "images"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// progressLog collects progress updates (calls are serialised by the store).
type progressLog struct {
	mu  sync.Mutex
	all []images.Progress
}

func (p *progressLog) fn(u images.Progress) {
	p.mu.Lock()
	p.all = append(p.all, u)
	p.mu.Unlock()
}

func (p *progressLog) statuses(layer string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, u := range p.all {
		if u.Layer == layer && (len(out) == 0 || out[len(out)-1] != u.Status) {
			out = append(out, u.Status)
		}
	}
	return out
}

// leftovers lists what an interrupted pull might have left: dot-directories in images/ and files in
// blobs/ingest.
func leftovers(t *testing.T, s *images.Store) []string {
	t.Helper()
	var out []string
	for _, d := range []string{"images", "blobs/ingest", "disks"} {
		ents, err := os.ReadDir(filepath.Join(s.Dir(), d))
		if err != nil && !(d == "disks" && errors.Is(err, os.ErrNotExist)) {
			t.Fatal(err)
		}
		for _, e := range ents {
			if d == "blobs/ingest" || strings.HasPrefix(e.Name(), ".") {
				out = append(out, d+"/"+e.Name())
			}
		}
	}
	return out
}
