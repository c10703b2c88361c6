package images

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
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
	ap := newApplier(r, &ownerLog{path: filepath.Join(dir, "owners")})
	if adjust != nil {
		adjust(ap)
	}
	if err := ap.applyLayer(context.Background(), bytes.NewReader(tarball)); err != nil {
		return err
	}
	return ap.finish()
}

// Without the right to chown or mknod, owners and device nodes are recorded next to the rootfs.
func TestOwnersRecordedWhenChownIsNotPermitted(t *testing.T) {
	var b testutil.TarBuilder
	b.Dir("home", 0o755)
	b.Add(&tar.Header{Name: "home/app/", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 1000, Gid: 1000}, nil)
	b.Add(&tar.Header{Name: "home/app/f", Typeflag: tar.TypeReg, Mode: 0o4755, Uid: 1000, Gid: 50}, []byte("x"))
	b.Add(&tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3}, nil)
	raw, err := b.Tar()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// As an unprivileged user would: every chown is refused.
	if err := apply(t, dir, raw, func(a *applier) { a.canOwn, a.euid, a.egid = false, -1, -1 }); err != nil {
		t.Fatal(err)
	}
	owners, err := os.ReadFile(filepath.Join(dir, "owners"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`d 1000 1000 750 0 0 "/home/app"`,
		`f 1000 50 4755 0 0 "/home/app/f"`,
		`c 0 0 666 1 3 "/dev/null"`,
	} {
		if !strings.Contains(string(owners), want+"\n") {
			t.Errorf("owners file lacks %q:\n%s", want, owners)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "root/dev/null")); err == nil {
		t.Error("a device node was made without the right to")
	}
	fi, err := os.Stat(filepath.Join(dir, "root/home/app/f"))
	if err != nil || fi.Mode().Perm() != 0o755 || fi.Mode()&os.ModeSetuid == 0 {
		t.Errorf("home/app/f mode %v, %v", fi.Mode(), err)
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
			if e.Name() != "root" && e.Name() != "owners" {
				t.Fatalf("created %q outside the root", e.Name())
			}
		}
		forceRemoveAll(dir)
	})
}
