package images

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/skiff-containers/skiff/internal/testutil"
)

// apply unpacks one tarball into dir/root with an applier the test may adjust.
func apply(t testing.TB, dir string, tarball []byte, adjust func(*applier)) error {
	t.Helper()
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	r, err := openFSRoot(root, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ap := newApplier(r)
	if adjust != nil {
		adjust(ap)
	}
	if err := ap.applyLayer(context.Background(), bytes.NewReader(tarball)); err != nil {
		return err
	}
	return ap.finish()
}

// The unpacker writes files as the process's user and never makes a device node: owners and
// devices belong in an image's disk, not on the host (even as root).
func TestUnpackMakesNoOwnersNorDevices(t *testing.T) {
	var b testutil.TarBuilder
	b.Dir("home", 0o755)
	b.Add(&tar.Header{Name: "home/app/", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 1000, Gid: 1000}, nil)
	b.Add(&tar.Header{Name: "home/app/f", Typeflag: tar.TypeReg, Mode: 0o4755, Uid: 1000, Gid: 50}, []byte("x"))
	raw, err := b.Tar()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := apply(t, dir, raw, nil); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "root/home/app/f"))
	if err != nil || fi.Mode().Perm() != 0o755 || fi.Mode()&os.ModeSetuid == 0 {
		t.Errorf("home/app/f mode %v, %v", fi.Mode(), err)
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != os.Geteuid() {
		t.Errorf("home/app/f owned by %d, want the process's user %d", st.Uid, os.Geteuid())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("files next to the root: %v", ents)
	}
	b = testutil.TarBuilder{}
	b.Add(&tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3}, nil)
	if raw, err = b.Tar(); err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	if err := apply(t, dir, raw, nil); !errors.Is(err, ErrUnsafeEntry) {
		t.Errorf("a device node: %v, want ErrUnsafeEntry", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "root/dev/null")); err == nil {
		t.Error("a device node was made")
	}
}

// FuzzApply feeds arbitrary tarballs to the unpacker: it may fail, but never panics and never
// creates anything outside the root.
func FuzzApply(f *testing.F) {
	seeds := []func(b *testutil.TarBuilder){
		func(b *testutil.TarBuilder) { b.File("a/b/c", 0o644, []byte("x")) },
		func(b *testutil.TarBuilder) { b.Symlink("l", "/"); b.File("l/x", 0o644, nil) },
		func(b *testutil.TarBuilder) { b.Symlink("l", "../.."); b.Dir("l/d", 0o755) },
		func(b *testutil.TarBuilder) { b.File("../x", 0o644, nil) },
		func(b *testutil.TarBuilder) { b.Dir("d", 0o755); b.File("d/.wh..wh..opq", 0o644, nil) },
		func(b *testutil.TarBuilder) {
			b.File("f", 0o644, []byte("x"))
			b.Add(&tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "f"}, nil)
		},
	}
	for _, s := range seeds {
		var b testutil.TarBuilder
		s(&b)
		raw, err := b.Tar()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		apply(t, dir, data, nil)
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if e.Name() != "root" {
				t.Fatalf("created %q outside the root", e.Name())
			}
		}
		forceRemoveAll(dir)
	})
}
