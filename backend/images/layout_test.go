package images

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"golang.org/x/sys/unix"
)

// writeLayout writes a one-image OCI layout (linux/amd64, one random layer) into a new directory.
func writeLayout(t *testing.T) (dir string, layer v1.Descriptor) {
	t.Helper()
	img, err := random.Image(4096, 1)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	mf, _ := img.Manifest()
	return dir, mf.Layers[0]
}

// The layout reader opens nothing but regular files beneath the layout, each read bounded: a
// directory handed to it with a symlinked or special entry fails at once, naming the entry.
func TestLayoutDirectoryEntriesMustBeRegular(t *testing.T) {
	cases := []struct {
		name, entry, want string
		edit              func(t *testing.T, dir string, layer v1.Descriptor)
	}{
		{"index.json symlink to /dev/zero", "index.json", "symlink", func(t *testing.T, dir string, _ v1.Descriptor) {
			replaceWith(t, filepath.Join(dir, "index.json"), func(p string) error { return os.Symlink("/dev/zero", p) })
		}},
		{"index.json FIFO", "index.json", "FIFO", func(t *testing.T, dir string, _ v1.Descriptor) {
			replaceWith(t, filepath.Join(dir, "index.json"), func(p string) error { return unix.Mkfifo(p, 0o644) })
		}},
		{"index.json directory", "index.json", "directory", func(t *testing.T, dir string, _ v1.Descriptor) {
			replaceWith(t, filepath.Join(dir, "index.json"), func(p string) error { return os.Mkdir(p, 0o755) })
		}},
		{"blobs/sha256 symlink", "blobs/sha256", "symlink", func(t *testing.T, dir string, _ v1.Descriptor) {
			moved := filepath.Join(t.TempDir(), "blobs")
			if err := os.Rename(filepath.Join(dir, "blobs", "sha256"), moved); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(moved, filepath.Join(dir, "blobs", "sha256")); err != nil {
				t.Fatal(err)
			}
		}},
		{"layer blob symlink to /dev/zero", "blobs/sha256/", "symlink", func(t *testing.T, dir string, l v1.Descriptor) {
			replaceWith(t, filepath.Join(dir, "blobs", "sha256", l.Digest.Hex), func(p string) error { return os.Symlink("/dev/zero", p) })
		}},
		{"layer blob longer than its descriptor", "layout blob sha256:", "its descriptor says", func(t *testing.T, dir string, l v1.Descriptor) {
			f, err := os.OpenFile(filepath.Join(dir, "blobs", "sha256", l.Digest.Hex), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write(make([]byte, 1024))
			f.Close()
		}},
		{"index.json too large", "index.json", "more than", func(t *testing.T, dir string, _ v1.Descriptor) {
			if err := os.Truncate(filepath.Join(dir, "index.json"), maxMetadataSize+1); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, layer := writeLayout(t)
			c.edit(t, dir, layer)
			s, err := Open(filepath.Join(t.TempDir(), "store"), WithPlatform("linux/amd64"))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := s.loadLayout(ctx, dir, func(Progress) {})
				done <- err
			}()
			select {
			case err = <-done:
			case <-time.After(time.Minute):
				t.Fatal("loadLayout has not returned after a minute")
			}
			if err == nil || !strings.Contains(err.Error(), c.entry) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("loadLayout: %v, want an error naming %q (%s)", err, c.entry, c.want)
			}
			if !errors.Is(err, ErrUnsafeEntry) && !errors.Is(err, ErrDigestMismatch) && !errors.Is(err, ErrTooLarge) {
				t.Errorf("error class: %v", err)
			}
		})
	}
	t.Run("intact", func(t *testing.T) {
		dir, _ := writeLayout(t)
		s, err := Open(filepath.Join(t.TempDir(), "store"), WithPlatform("linux/amd64"))
		if err != nil {
			t.Fatal(err)
		}
		imgs, err := s.loadLayout(context.Background(), dir, func(Progress) {})
		if err != nil || len(imgs) != 1 {
			t.Fatalf("loadLayout of an intact layout: %v, %v", imgs, err)
		}
	})
}

func replaceWith(t *testing.T, p string, make func(string) error) {
	t.Helper()
	if err := os.RemoveAll(p); err != nil {
		t.Fatal(err)
	}
	if err := make(p); err != nil {
		t.Fatal(err)
	}
}

// countingSource is an endless source of zeros that counts what was read from it, and fails past a
// cap so that a reader that does not stop cannot fill the disk.
type countingSource struct{ n int64 }

func (c *countingSource) Read(p []byte) (int, error) {
	if c.n >= 64<<20 {
		return 0, errors.New("read 64 MiB of a 1000-byte blob")
	}
	clear(p)
	c.n += int64(len(p))
	return len(p), nil
}

// ingest reads at most one byte past the size a blob declares, and fails then.
func TestIngestStopsOneBytePastTheDeclaredSize(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	src := &countingSource{}
	dg := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	_, err = s.ingest(context.Background(), dg, 1000, func() (io.ReadCloser, error) { return io.NopCloser(src), nil }, nil)
	if !errors.Is(err, ErrDigestMismatch) || !strings.Contains(err.Error(), "more than the 1000 bytes") {
		t.Fatalf("ingest of an overlong blob: %v", err)
	}
	if src.n > 1001 {
		t.Errorf("ingest read %d bytes of a blob declared as 1000", src.n)
	}
	if ents, _ := os.ReadDir(s.ingestDir()); len(ents) != 0 {
		t.Errorf("ingest left %d files", len(ents))
	}
}
