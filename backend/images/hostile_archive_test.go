package images_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/skiff-containers/skiff/backend/images"
	"github.com/skiff-containers/skiff/internal/testutil"
)

// layoutArchive writes a one-image OCI layout (image tagged example.com/x:1) as a tarball. edit, if
// not nil, sees each entry (directories end in "/") and may write its own instead, returning true.
func layoutArchive(t *testing.T, edit func(b *testutil.TarBuilder, name string, data []byte) bool) []byte {
	t.Helper()
	var lb testutil.TarBuilder
	lb.File("hello", 0o644, []byte("hello from a layout\n"))
	l, err := lb.Layer()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(imageWithLayer(t, l), layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": "example.com/x:1"})); err != nil {
		t.Fatal(err)
	}
	var b testutil.TarBuilder
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if edit == nil || !edit(&b, rel+"/", nil) {
				b.Dir(rel, 0o755)
			}
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if edit == nil || !edit(&b, rel, data) {
			b.File(rel, 0o644, data)
		}
		return nil
	})
	raw, err := b.Tar()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// loadWithin runs Load and fails the test when it has not returned within a minute (a hostile
// archive that blocks or reads forever).
func loadWithin(t *testing.T, s *images.Store, raw []byte) ([]images.Image, error) {
	t.Helper()
	type result struct {
		imgs []images.Image
		err  error
	}
	done := make(chan result, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() {
		imgs, err := s.Load(ctx, bytes.NewReader(raw), nil)
		done <- result{imgs, err}
	}()
	select {
	case r := <-done:
		return r.imgs, r.err
	case <-time.After(time.Minute):
		t.Fatal("Load has not returned after a minute (and ignored its context's deadline)")
		return nil, nil
	}
}

// An archive holding anything but regular files and directories where Load would read it (a
// symlink to /dev/zero, a FIFO, a symlinked blob directory, a sparse file, a device) fails at once
// with ErrUnsafeEntry naming the entry, reads nothing outside the archive and leaves nothing behind.
func TestLoadRefusesHostileArchives(t *testing.T) {
	plain := layoutArchive(t, nil)
	s := openStore(t, images.WithPlatform("linux/amd64"))
	imgs, err := loadWithin(t, s, plain)
	if err != nil || len(imgs) != 1 || !strings.Contains(strings.Join(imgs[0].RepoTags, ","), "example.com/x:1") {
		t.Fatalf("loading the plain layout: %+v, %v", imgs, err)
	}

	// The blobs, also written where a symlink in the archive could point.
	hostBlobs := t.TempDir()
	layoutArchive(t, func(b *testutil.TarBuilder, name string, data []byte) bool {
		if strings.HasPrefix(name, "blobs/sha256/") && data != nil {
			os.WriteFile(filepath.Join(hostBlobs, filepath.Base(name)), data, 0o644)
		}
		return false
	})
	var layerBlob string
	layoutArchive(t, func(b *testutil.TarBuilder, name string, data []byte) bool {
		if strings.HasPrefix(name, "blobs/sha256/") && bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
			layerBlob = name // the one gzip blob
		}
		return false
	})
	if layerBlob == "" {
		t.Fatal("no layer blob in the layout")
	}

	cases := []struct {
		name, entry string
		edit        func(b *testutil.TarBuilder, name string, data []byte) bool
	}{
		{"index.json is a symlink to /dev/zero", "index.json", func(b *testutil.TarBuilder, name string, data []byte) bool {
			if name == "index.json" {
				b.Symlink(name, "/dev/zero")
				return true
			}
			return false
		}},
		{"index.json is a FIFO", "index.json", func(b *testutil.TarBuilder, name string, data []byte) bool {
			if name == "index.json" {
				b.Add(&tar.Header{Name: name, Typeflag: tar.TypeFifo, Mode: 0o644}, nil)
				return true
			}
			return false
		}},
		{"blobs/sha256 is a symlink out of the archive", "blobs/sha256", func(b *testutil.TarBuilder, name string, data []byte) bool {
			switch {
			case name == "blobs/sha256/":
				b.Symlink("blobs/sha256", hostBlobs)
				return true
			case strings.HasPrefix(name, "blobs/sha256/"):
				return true
			}
			return false
		}},
		{"the layer blob is a symlink to /dev/zero", layerBlob, func(b *testutil.TarBuilder, name string, data []byte) bool {
			if name == layerBlob {
				b.Symlink(name, "/dev/zero")
				return true
			}
			return false
		}},
		{"the layer blob is a sparse file", layerBlob, func(b *testutil.TarBuilder, name string, data []byte) bool {
			if name == layerBlob {
				// Renamed to GNU.sparse.* in the archive's bytes (see sparseTar).
				b.Add(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, PAXRecords: map[string]string{
					"XXX.sparse.map": "0,1", "XXX.sparse.numblocks": "1", "XXX.sparse.size": "1073741824"}}, []byte("x"))
				return true
			}
			return false
		}},
		{"a hard link", "blobs/sha256/extra", func(b *testutil.TarBuilder, name string, data []byte) bool {
			if name == "index.json" {
				b.Add(&tar.Header{Name: "blobs/sha256/extra", Typeflag: tar.TypeLink, Linkname: layerBlob}, nil)
			}
			return false
		}},
		{"a device node", "dev/zero", func(b *testutil.TarBuilder, name string, data []byte) bool {
			if name == "oci-layout" {
				b.Add(&tar.Header{Name: "dev/zero", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 5, Mode: 0o666}, nil)
			}
			return false
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw := layoutArchive(t, c.edit)
			if c.name == "the layer blob is a sparse file" {
				raw = bytes.ReplaceAll(raw, []byte("XXX.sparse."), []byte("GNU.sparse."))
			}
			s := openStore(t, images.WithPlatform("linux/amd64"))
			_, err := loadWithin(t, s, raw)
			if !errors.Is(err, images.ErrUnsafeEntry) || !strings.Contains(err.Error(), c.entry) {
				t.Fatalf("Load: %v, want ErrUnsafeEntry naming %q", err, c.entry)
			}
			t.Logf("refused: %v", err)
			if list, _ := s.List(context.Background()); len(list) != 0 {
				t.Errorf("listed after a refused load: %v", list)
			}
			if l := leftovers(t, s); len(l) != 0 {
				t.Errorf("the refused load left %v", l)
			}
		})
	}
}

// A docker archive may link its entries to each other (`docker save` since Docker 25 links each
// image's layer.tar to its blob): those resolve inside the archive and load. A device or a FIFO in
// one is refused.
func TestLoadDockerArchiveLinksAndDevices(t *testing.T) {
	var lb testutil.TarBuilder
	lb.File("hello", 0o644, []byte("hello from docker save\n"))
	layer, err := lb.Tar()
	if err != nil {
		t.Fatal(err)
	}
	layerHex := fmt.Sprintf("%x", sha256.Sum256(layer))
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:` + layerHex + `"]}}`)
	configHex := fmt.Sprintf("%x", sha256.Sum256(config))
	manifest := []byte(`[{"Config":"blobs/sha256/` + configHex + `","RepoTags":["example/linked:1"],"Layers":["0123abcd/layer.tar"]}]`)
	archive := func(extra func(b *testutil.TarBuilder)) []byte {
		var b testutil.TarBuilder
		b.Dir("blobs/sha256", 0o755)
		b.File("blobs/sha256/"+configHex, 0o644, config)
		b.File("blobs/sha256/"+layerHex, 0o644, layer)
		b.Dir("0123abcd", 0o755)
		b.Symlink("0123abcd/layer.tar", "../blobs/sha256/"+layerHex)
		if extra != nil {
			extra(&b)
		}
		b.File("manifest.json", 0o644, manifest)
		raw, err := b.Tar()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	s := openStore(t, images.WithPlatform("linux/amd64"))
	got, err := loadWithin(t, s, archive(nil))
	if err != nil || len(got) != 1 {
		t.Fatalf("loading a docker archive with a linked layer: %+v, %v", got, err)
	}
	if b := dcat(t, diskOf(t, s, &got[0]), "/hello"); b != "hello from docker save\n" {
		t.Errorf("hello = %q", b)
	}
	for _, c := range []struct {
		name  string
		extra func(b *testutil.TarBuilder)
	}{
		{"fifo", func(b *testutil.TarBuilder) {
			b.Add(&tar.Header{Name: "fifo", Typeflag: tar.TypeFifo, Mode: 0o644}, nil)
		}},
		{"dev/null", func(b *testutil.TarBuilder) {
			b.Add(&tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666}, nil)
		}},
	} {
		s := openStore(t, images.WithPlatform("linux/amd64"))
		if _, err := loadWithin(t, s, archive(c.extra)); !errors.Is(err, images.ErrUnsafeEntry) || !strings.Contains(err.Error(), c.name) {
			t.Errorf("a docker archive with %s: %v, want ErrUnsafeEntry naming it", c.name, err)
		}
	}
}
