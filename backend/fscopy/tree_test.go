package fscopy

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CopyTree copies the content of a directory (not the directory itself) with modes, mtimes and
// symlinks, including into a read-only directory it sets the mode of only at the end.
func TestCopyTree(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "d", "ro"), 0o755))
	must(os.WriteFile(filepath.Join(src, "d", "ro", "f"), []byte("data"), 0o640))
	must(os.Symlink("../outside", filepath.Join(src, "d", "link")))
	must(os.WriteFile(filepath.Join(src, "d", "x"), []byte("#!"), 0o755))
	must(os.Chmod(filepath.Join(src, "d", "x"), 0o755|fs.ModeSetgid))
	must(os.Chtimes(filepath.Join(src, "d", "ro", "f"), old, old))
	must(os.Chmod(filepath.Join(src, "d", "ro"), 0o555))
	must(os.Chtimes(filepath.Join(src, "d", "ro"), old, old))
	t.Cleanup(func() { os.Chmod(filepath.Join(dst, "ro"), 0o755); os.Chmod(filepath.Join(src, "d", "ro"), 0o755) })

	sr, err := os.OpenRoot(src)
	must(err)
	defer sr.Close()
	dr, err := os.OpenRoot(dst)
	must(err)
	defer dr.Close()
	must(CopyTree(context.Background(), sr, "d", dr))

	if b, err := os.ReadFile(filepath.Join(dst, "ro", "f")); err != nil || string(b) != "data" {
		t.Errorf("ro/f: %q, %v", b, err)
	}
	for name, want := range map[string]fs.FileMode{"ro": fs.ModeDir | 0o555, "ro/f": 0o640, "x": 0o755 | fs.ModeSetgid} {
		fi, err := os.Lstat(filepath.Join(dst, name))
		if err != nil || fi.Mode() != want {
			t.Errorf("%s: mode %v, %v; want %v", name, fi.Mode(), err, want)
		}
	}
	for _, name := range []string{"ro", "ro/f"} {
		if fi, err := os.Lstat(filepath.Join(dst, name)); err != nil || !fi.ModTime().Equal(old) {
			t.Errorf("%s: mtime %v, %v; want %v", name, fi.ModTime(), err, old)
		}
	}
	if l, err := os.Readlink(filepath.Join(dst, "link")); err != nil || l != "../outside" {
		t.Errorf("link: %q, %v", l, err)
	}
	if _, err := os.Lstat(filepath.Join(dst, "d")); err == nil {
		t.Error("the source directory itself was copied, want only its content")
	}
}
