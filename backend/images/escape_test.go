package images_test

import (
	"archive/tar"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/skiff-containers/skiff/backend/images"
	"github.com/skiff-containers/skiff/internal/testutil"
)

// craftImage makes a linux/amd64 image whose layers are built by the given functions.
func craftImage(t *testing.T, layers ...func(b *testutil.TarBuilder)) v1.Image {
	t.Helper()
	img := empty.Image
	for _, build := range layers {
		var b testutil.TarBuilder
		build(&b)
		l, err := b.Layer()
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func hardlink(b *testutil.TarBuilder, name, target string) {
	b.Add(&tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target}, nil)
}

// snapshot lists a directory tree with file contents.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		v := fi.Mode().String()
		if fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			v += " " + string(b)
		}
		out[rel] = v
		return nil
	})
	return out
}

// Every way a layer entry could reach outside the rootfs fails the pull with an error naming the
// entry, and leaves the host directory as it was.
func TestUnsafeLayersFailAndLeaveTheHostAlone(t *testing.T) {
	host := t.TempDir() // stands for anything on the host outside the store
	if err := os.WriteFile(filepath.Join(host, "secret"), []byte("s"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(host, "sub"), 0o755)
	os.WriteFile(filepath.Join(host, "sub", "keep"), []byte("k"), 0o644)
	before := snapshot(t, host)
	cases := testutil.HostileLayers(host)
	reg, _ := registry(t, nil)
	ctx := ctxT(t)
	for i, c := range cases {
		ref := fmt.Sprintf("%s/escape%d:latest", reg, i)
		if err := testutil.PushImage(ctx, ref, craftImage(t, c.Layers...)); err != nil {
			t.Fatal(err)
		}
	}
	for _, resolver := range []string{"native", "portable"} {
		opts := []images.Option{}
		if resolver == "portable" {
			opts = append(opts, images.WithPortableResolver())
		}
		s := openStore(t, opts...)
		for i, c := range cases {
			ref := fmt.Sprintf("%s/escape%d:latest", reg, i)
			checkEscape(t, s, resolver+"/"+c.Name, ref, c.Entry, host, before)
		}
	}
	if _, err := os.Stat("/evil"); err == nil {
		t.Error("/evil exists")
	}
}

func checkEscape(t *testing.T, s *images.Store, name, ref, entry, host string, before map[string]string) {
	ctx := ctxT(t)
	t.Run(name, func(t *testing.T) {
		_, err := s.Pull(ctx, ref, images.PullOptions{})
		if !errors.Is(err, images.ErrUnsafeEntry) {
			t.Fatalf("pull: %v, want ErrUnsafeEntry", err)
		}
		if want := fmt.Sprintf("entry %q", entry); !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
		if after := snapshot(t, host); !reflect.DeepEqual(after, before) {
			t.Errorf("host directory changed:\nbefore %v\nafter  %v", before, after)
		}
		if list, _ := s.List(ctx); len(list) != 0 {
			t.Errorf("an unsafe image is listed: %v", list)
		}
		if l := leftovers(t, s); len(l) != 0 {
			t.Errorf("left %v", l)
		}
	})
}

// Symlinks that stay inside the root are followed, as Docker does (usr-merged layouts), and symlinks
// pointing anywhere are fine as entries themselves.
func TestSymlinksInsideTheRoot(t *testing.T) {
	reg, _ := registry(t, nil)
	ctx := ctxT(t)
	img := craftImage(t, func(b *testutil.TarBuilder) {
		b.Dir("usr/lib", 0o755)
		b.Symlink("lib", "usr/lib")
		b.Symlink("etc-link", "/etc")
		b.Symlink("dangling", "../../../../outside")
	}, func(b *testutil.TarBuilder) {
		b.File("lib/libx.so", 0o644, []byte("x"))
		b.Dir("lib/sub", 0o755)
		hardlink(b, "lib/sub/hl", "usr/lib/libx.so")
		b.File("usr/lib/../lib/sub/y", 0o644, []byte("y"))
	})
	if err := testutil.PushImage(ctx, reg+"/links:latest", img); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*images.Store{openStore(t), openStore(t, images.WithPortableResolver())} {
		checkLinks(t, s, reg+"/links:latest")
	}
}

func checkLinks(t *testing.T, s *images.Store, ref string) {
	got, err := s.Pull(ctxT(t), ref, images.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	disk := diskOf(t, s, got)
	for p, want := range map[string]string{"usr/lib/libx.so": "x", "usr/lib/sub/y": "y", "usr/lib/sub/hl": "x"} {
		if b := dcat(t, disk, "/"+p); b != want {
			t.Errorf("%s = %q", p, b)
		}
	}
	if in := dstat(t, disk, "/dangling"); in == nil || in.Target != "../../../../outside" {
		t.Errorf("dangling: %+v", in)
	}
}
