package images_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/skiff-containers/skiff/backend/images"
	"github.com/skiff-containers/skiff/internal/testutil"
)

// sparseTar is a tarball holding one PAX (GNU 0.1) sparse file: one byte of data, the rest a hole,
// size bytes in all once read. Go's tar writer cannot write sparse files, so the records are written
// under a placeholder key of the same length and renamed in the bytes.
func sparseTar(t *testing.T, name string, size int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: 1, ModTime: testutil.FixtureTime,
		Format: tar.FormatPAX, PAXRecords: map[string]string{
			"XXX.sparse.map": "0,1", "XXX.sparse.numblocks": "1", "XXX.sparse.size": strconvI(size)}}
	if err := tw.WriteHeader(hdr); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte("x"))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	out := bytes.ReplaceAll(buf.Bytes(), []byte("XXX.sparse."), []byte("GNU.sparse."))
	tr := tar.NewReader(bytes.NewReader(out)) // check the reader sees what the test means
	if h, err := tr.Next(); err != nil || h.Size != size || h.Name != name {
		t.Fatalf("sparse tar: %+v %v", h, err)
	}
	return out
}

func strconvI(n int64) string { b, _ := json.Marshal(n); return string(b) }

func imageWithLayer(t *testing.T, l v1.Layer) v1.Image {
	t.Helper()
	img := craftImage(t)
	img, err := appendLayer(img, l)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// A layer that uncompresses (a gzip bomb) or unpacks (a sparse entry) to more than the store's
// limit fails the pull with ErrTooLarge once the limit is passed, not when the disk is full, and
// leaves nothing behind.
func TestLayerBeyondTheLimitFailsEarly(t *testing.T) {
	const limit = 8 << 20
	bomb := func() v1.Layer {
		var b testutil.TarBuilder
		b.File("zeros", 0o644, make([]byte, 64<<20)) // 64 MiB of zeros: ~64 KiB gzipped
		l, err := b.Layer()
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	sparse := func() v1.Layer {
		l, err := testutil.GzipLayer(sparseTar(t, "hole", 64<<20))
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	host, _ := registry(t, nil)
	for _, c := range []struct {
		name, want string
		layer      func() v1.Layer
	}{
		{"gzip bomb", "uncompresses to more than", bomb},
		{"sparse entry", `"hole"`, sparse},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := c.layer()
			if sz, _ := l.Size(); sz > 1<<20 {
				t.Fatalf("the layer is %d bytes compressed: not a bomb", sz)
			}
			ref := host + "/bomb/" + strings.ReplaceAll(c.name, " ", "") + ":latest"
			if err := testutil.PushImage(context.Background(), ref, imageWithLayer(t, l)); err != nil {
				t.Fatal(err)
			}
			s := openStore(t, images.WithMaxLayerSize(limit))
			_, err := s.Pull(ctxT(t), ref, images.PullOptions{})
			if !errors.Is(err, images.ErrTooLarge) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("pull: %v, want ErrTooLarge mentioning %s", err, c.want)
			}
			if list, _ := s.List(context.Background()); len(list) != 0 {
				t.Errorf("listed after a failed pull: %v", list)
			}
			if l := leftovers(t, s); len(l) != 0 {
				t.Errorf("the failed pull left %v", l)
			}
			// The default limit is generous: the same image pulls.
			if _, err := openStore(t).Pull(ctxT(t), ref, images.PullOptions{}); err != nil {
				t.Errorf("pull with the default limit: %v", err)
			}
		})
	}
}

// endless serves blob (by digest) as its real content followed by zeros, without Content-Length,
// until the client stops reading or cap bytes went out; sent counts what went out.
type endless struct {
	digest string
	sent   atomic.Int64
}

const endlessCap = 64 << 20

func (e *endless) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+e.digest) {
			h.ServeHTTP(w, r)
			return
		}
		rec := &bufferedWriter{header: http.Header{}}
		h.ServeHTTP(rec, r)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(http.StatusOK)
		body := append([]byte{}, rec.body...)
		zeros := make([]byte, 64<<10)
		for e.sent.Load() < endlessCap {
			n, err := w.Write(body)
			e.sent.Add(int64(n))
			if err != nil {
				return
			}
			w.(http.Flusher).Flush()
			body = zeros
		}
	})
}

// A registry that sends more than a descriptor declares is read no further than one byte past the
// declared size, and a declared size beyond what the store reads is refused before any download.
func TestRegistryBlobsAreReadNoFurtherThanDeclared(t *testing.T) {
	ctx := ctxT(t)
	t.Run("artifact file longer than declared", func(t *testing.T) {
		e := &endless{}
		host, _ := registry(t, e.wrap)
		src := filepath.Join(t.TempDir(), "vmlinuz")
		os.WriteFile(src, bytes.Repeat([]byte("k"), 100<<10), 0o644)
		e.digest = "sha256:" + sha256Hex(bytes.Repeat([]byte("k"), 100<<10))
		ref := host + "/skiff/kernel:amd64"
		if _, err := images.PushArtifact(ctx, ref, map[string]string{"vmlinuz": src}, "application/vnd.skiff.kernel.v1"); err != nil {
			t.Fatal(err)
		}
		s := openStore(t)
		dest := filepath.Join(t.TempDir(), "kernel")
		_, err := s.PullArtifact(ctx, ref, dest, nil)
		if !errors.Is(err, images.ErrDigestMismatch) || !strings.Contains(err.Error(), "vmlinuz") {
			t.Fatalf("pull of an overlong file: %v, want ErrDigestMismatch naming vmlinuz", err)
		}
		checkStoppedEarly(t, &e.sent)
		if _, err := os.Stat(dest); !os.IsNotExist(err) {
			t.Errorf("destination after a failed pull: %v", err)
		}
	})
	t.Run("image layer longer than declared", func(t *testing.T) {
		e := &endless{}
		host, _ := registry(t, e.wrap)
		var b testutil.TarBuilder
		b.File("f", 0o644, []byte("content"))
		l, _ := b.Layer()
		dg, _ := l.Digest()
		e.digest = dg.String()
		ref := host + "/long/layer:latest"
		if err := testutil.PushImage(ctx, ref, imageWithLayer(t, l)); err != nil {
			t.Fatal(err)
		}
		s := openStore(t)
		// The declared bytes are the layer: its trailing junk is never read, or the pull fails.
		if img, err := s.Pull(ctx, ref, images.PullOptions{}); err == nil {
			if b := dcat(t, diskOf(t, s, img), "/f"); b != "content" {
				t.Errorf("f = %q", b)
			}
		} else if !errors.Is(err, images.ErrDigestMismatch) {
			t.Fatalf("pull: %v", err)
		}
		checkStoppedEarly(t, &e.sent)
	})
	for _, c := range []struct{ name, field string }{{"config declared huge", "config"}, {"layer declared huge", "layer"}} {
		t.Run(c.name, func(t *testing.T) {
			e := &endless{}
			host, _ := registry(t, e.wrap)
			var b testutil.TarBuilder
			b.File("f", 0o644, []byte("content"))
			l, _ := b.Layer()
			img := imageWithLayer(t, l)
			mf, err := img.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			mf = mf.DeepCopy()
			if c.field == "config" {
				e.digest = mf.Config.Digest.String()
				mf.Config.Size = 1 << 40
			} else {
				e.digest = mf.Layers[len(mf.Layers)-1].Digest.String()
				mf.Layers[len(mf.Layers)-1].Size = 1 << 40
			}
			ref := host + "/huge/" + c.field + ":latest"
			if err := testutil.PushImage(ctx, ref, img); err != nil {
				t.Fatal(err)
			}
			putManifest(t, ref, mf)
			s := openStore(t, images.WithMaxLayerSize(1<<30))
			_, err = s.Pull(ctx, ref, images.PullOptions{})
			if !errors.Is(err, images.ErrTooLarge) || !strings.Contains(err.Error(), "declares") {
				t.Fatalf("pull: %v, want ErrTooLarge (declared size)", err)
			}
			if n := e.sent.Load(); n != 0 {
				t.Errorf("%d bytes of the %s were downloaded before the refusal", n, c.field)
			}
			if l := leftovers(t, s); len(l) != 0 {
				t.Errorf("the failed pull left %v", l)
			}
		})
	}
}

func checkStoppedEarly(t *testing.T, sent *atomic.Int64) {
	t.Helper()
	// The server's writes run ahead of the client by what the sockets buffer (a few MiB at most).
	if n := sent.Load(); n >= endlessCap {
		t.Errorf("the client read all %d bytes the server sent: it did not stop at the declared size", n)
	}
}

// rawManifest puts a manifest as written.
type rawManifest struct {
	b  []byte
	mt types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.b, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

func putManifest(t *testing.T, ref string, mf *v1.Manifest) {
	t.Helper()
	b, err := json.Marshal(mf)
	if err != nil {
		t.Fatal(err)
	}
	r, err := parseTestRef(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(r, rawManifest{b: b, mt: mf.MediaType}); err != nil {
		t.Fatal(err)
	}
}

func appendLayer(img v1.Image, l v1.Layer) (v1.Image, error) { return mutate.AppendLayers(img, l) }

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func parseTestRef(ref string) (name.Reference, error) { return name.ParseReference(ref) }
