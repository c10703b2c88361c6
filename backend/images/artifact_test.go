package images_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/skiff-containers/skiff/backend/images"
	"github.com/skiff-containers/skiff/internal/testutil"
)

func TestArtifactPushPull(t *testing.T) {
	var corrupt atomic.Bool
	srv := httptest.NewServer(func() http.Handler {
		h := testutil.RegistryHandler()
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if corrupt.Load() && r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
				rec := &bufferedWriter{header: http.Header{}}
				h.ServeHTTP(rec, r)
				for k, v := range rec.header {
					w.Header()[k] = v
				}
				w.WriteHeader(rec.code)
				if len(rec.body) > 0 {
					rec.body[0] ^= 0xff
				}
				w.Write(rec.body)
				return
			}
			h.ServeHTTP(w, r)
		})
	}())
	t.Cleanup(srv.Close)
	host := srv.Listener.Addr().String()
	ctx := ctxT(t)

	src := t.TempDir()
	kernel := make([]byte, 3<<20)
	rand.Read(kernel)
	files := map[string][]byte{"vmlinuz": kernel, "modules.order": []byte("virtio_pci.ko\n"), "manifest.json": []byte(`{"arch":"amd64"}`)}
	paths := map[string]string{}
	for n, b := range files {
		paths[n] = filepath.Join(src, n)
		os.WriteFile(paths[n], b, 0o644)
	}
	ref := host + "/skiff/kernel:amd64"
	dg, err := images.PushArtifact(ctx, ref, paths, "application/vnd.skiff.kernel.v1")
	if err != nil {
		t.Fatal(err)
	}
	s := openStore(t)
	dest := filepath.Join(t.TempDir(), "kernel", "amd64")
	os.MkdirAll(dest, 0o755)
	os.WriteFile(filepath.Join(dest, "stale"), []byte("old"), 0o644)
	var prog progressLog
	got, err := s.PullArtifact(ctx, ref, dest, prog.fn)
	if err != nil {
		t.Fatal(err)
	}
	if got != dg {
		t.Errorf("pulled digest %s, pushed %s", got, dg)
	}
	read := func() map[string][]byte {
		out := map[string][]byte{}
		ents, _ := os.ReadDir(dest)
		for _, e := range ents {
			b, _ := os.ReadFile(filepath.Join(dest, e.Name()))
			out[e.Name()] = b
		}
		return out
	}
	if have := read(); !reflect.DeepEqual(have, files) {
		t.Errorf("destination holds %d files %v", len(have), keys(have))
	}
	if len(prog.all) == 0 || prog.all[0].Ref != host+"/skiff/kernel:amd64" {
		t.Errorf("progress %+v", prog.all)
	}
	// By digest, too.
	if got, err := s.PullArtifact(ctx, host+"/skiff/kernel@"+dg, dest, nil); err != nil || got != dg {
		t.Errorf("pull by digest: %s, %v", got, err)
	}

	// A corrupted download fails and leaves the previous files in place.
	corrupt.Store(true)
	if _, err := s.PullArtifact(ctx, ref, dest, nil); err == nil {
		t.Fatal("a corrupted artifact was accepted")
	}
	if have := read(); !reflect.DeepEqual(have, files) {
		t.Errorf("a failed pull changed the destination: %v", keys(have))
	}
	if ents, _ := os.ReadDir(filepath.Dir(dest)); len(ents) != 1 {
		t.Errorf("a failed pull left %d entries next to the destination", len(ents))
	}
	corrupt.Store(false)

	if _, err := images.PushArtifact(ctx, ref, map[string]string{"../evil": paths["vmlinuz"]}, "x"); !errors.Is(err, images.ErrUnsafeEntry) {
		t.Errorf("pushing a file named ../evil: %v", err)
	}
	if _, err := s.PullArtifact(ctx, host+"/skiff/none:1", dest, nil); !errors.Is(err, images.ErrNotFound) {
		t.Errorf("missing artifact: %v", err)
	}
	// An image is not an artifact of files: its layers have no titles.
	if err := testutil.PushImage(context.Background(), host+"/img:1", craftImage(t, func(b *testutil.TarBuilder) { b.File("f", 0o644, []byte("x")) })); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PullArtifact(ctx, host+"/img:1", dest, nil); !errors.Is(err, images.ErrUnsafeEntry) {
		t.Errorf("pulling an image as an artifact: %v", err)
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
