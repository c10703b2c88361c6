//go:build linux

package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

func copyEngine(t *testing.T) (*Engine, Container) {
	t.Helper()
	home := t.TempDir()
	e, err := Open(context.Background(), Config{Home: home, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	rec := recordOnDisk(t, e, "cp")
	e.Close(context.Background())
	if e, err = Open(context.Background(), Config{Home: home, Log: testLogger(t)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	return e, rec
}

type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func tarOf(t *testing.T, ents ...entry) *bytes.Buffer {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range ents {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: mode, Size: int64(len(e.body)), Linkname: e.link,
			ModTime: time.Unix(1700000000, 0)}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e.body)
	}
	tw.Close()
	return &b
}

func TestCopyToAndFrom(t *testing.T) {
	e, rec := copyEngine(t)
	ctx := context.Background()
	os.Symlink("/busy", filepath.Join(rec.RootFS, "abs")) // absolute: resolved inside the root
	err := e.CopyTo(ctx, rec.ID, "/abs", tarOf(t,
		entry{name: "d/", typ: tar.TypeDir, mode: 0o750},
		entry{name: "d/f.txt", typ: tar.TypeReg, body: "hello", mode: 0o4755},
		entry{name: "d/l", typ: tar.TypeSymlink, link: "/etc/passwd"},
		entry{name: "d/h", typ: tar.TypeLink, link: "d/f.txt"},
	), CopyToOptions{})
	if err != nil {
		t.Fatalf("CopyTo: %v", err)
	}
	f := filepath.Join(rec.RootFS, "busy/d/f.txt")
	if b, err := os.ReadFile(f); err != nil || string(b) != "hello" {
		t.Fatalf("copied file: %q, %v", b, err)
	}
	if fi, _ := os.Stat(f); fi.Mode().Perm() != 0o755 || fi.Mode()&os.ModeSetuid == 0 || !fi.ModTime().Equal(time.Unix(1700000000, 0)) {
		t.Errorf("copied file mode %v mtime %v", fi.Mode(), fi.ModTime())
	}
	if fi, _ := os.Stat(filepath.Join(rec.RootFS, "busy/d")); fi.Mode().Perm() != 0o750 {
		t.Errorf("copied dir mode %v", fi.Mode())
	}
	if l, _ := os.Readlink(filepath.Join(rec.RootFS, "busy/d/l")); l != "/etc/passwd" {
		t.Errorf("copied symlink points to %q", l)
	}

	st, err := e.StatPath(ctx, rec.ID, "/abs")
	if err != nil || st.Name != "abs" || st.LinkTarget != "/busy" || st.Mode&os.ModeSymlink == 0 {
		t.Errorf("StatPath(/abs) = %+v, %v", st, err)
	}
	rc, st, err := e.CopyFrom(ctx, rec.ID, "/abs/d")
	if err != nil || st.Name != "d" || !st.Mode.IsDir() {
		t.Fatalf("CopyFrom(/abs/d) = %+v, %v", st, err)
	}
	tr := tar.NewReader(rc)
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
		if hdr.Name == "d/f.txt" {
			if b, _ := io.ReadAll(tr); string(b) != "hello" {
				t.Errorf("d/f.txt in the archive holds %q", b)
			}
		}
	}
	rc.Close()
	sort.Strings(names)
	if want := "[d/ d/f.txt d/h d/l]"; fmtList(names) != want {
		t.Errorf("CopyFrom entries %v, want %s", names, want)
	}
	if _, _, err := e.CopyFrom(ctx, rec.ID, "/nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("CopyFrom of a missing path: %v, want ErrNotFound", err)
	}
	if err := e.CopyTo(ctx, rec.ID, "/abs/d/f.txt", tarOf(t), CopyToOptions{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("CopyTo into a file: %v, want ErrInvalid", err)
	}
}

func fmtList(l []string) string {
	s := "["
	for i, x := range l {
		if i > 0 {
			s += " "
		}
		s += x
	}
	return s + "]"
}

// Hostile archives and hostile container symlinks: refused, and nothing is written outside the
// root (nor, for a refused archive, inside it).
func TestCopyHostile(t *testing.T) {
	e, rec := copyEngine(t)
	ctx := context.Background()
	outside := t.TempDir()
	rel, _ := filepath.Rel(filepath.Join(rec.RootFS, "busy"), outside)
	os.Symlink(rel, filepath.Join(rec.RootFS, "busy", "rel")) // a relative link out of the root
	os.Symlink(outside, filepath.Join(rec.RootFS, "hostabs")) // absolute: re-rooted, so not found
	os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o600)

	for _, tc := range []struct {
		what string
		dir  string
		tar  *bytes.Buffer
	}{
		{"../ escape", "/busy", tarOf(t, entry{name: "ok", typ: tar.TypeReg, body: "x"},
			entry{name: "../../../../../../" + outside + "/pwn", typ: tar.TypeReg, body: "x"})},
		{"symlink then a file beneath it", "/busy", tarOf(t, entry{name: "ok", typ: tar.TypeReg, body: "x"},
			entry{name: "esc", typ: tar.TypeSymlink, link: outside}, entry{name: "esc/pwn", typ: tar.TypeReg, body: "x"})},
		{"hardlink out", "/busy", tarOf(t, entry{name: "h", typ: tar.TypeLink, link: "../../../../etc/passwd"})},
		{"device node", "/busy", tarOf(t, entry{name: "ok", typ: tar.TypeReg, body: "x"}, entry{name: "null", typ: tar.TypeChar})},
		{"container symlink out of the root", "/busy", tarOf(t, entry{name: "rel/pwn", typ: tar.TypeReg, body: "x"})},
		{"destination through a host path", "/hostabs", tarOf(t, entry{name: "pwn", typ: tar.TypeReg, body: "x"})},
	} {
		if err := e.CopyTo(ctx, rec.ID, tc.dir, tc.tar, CopyToOptions{}); !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: CopyTo: %v, want ErrInvalid or ErrNotFound", tc.what, err)
		}
		if _, err := os.Lstat(filepath.Join(outside, "pwn")); err == nil {
			t.Fatalf("%s: wrote outside the container root", tc.what)
		}
		if _, err := os.Lstat(filepath.Join(rec.RootFS, "busy", "ok")); err == nil {
			t.Fatalf("%s: a refused archive wrote part of itself", tc.what)
		}
	}
	if _, _, err := e.CopyFrom(ctx, rec.ID, "/busy/rel/secret"); err == nil {
		t.Errorf("CopyFrom through a symlink out of the root succeeded")
	}
	if _, _, err := e.CopyFrom(ctx, rec.ID, "/hostabs/secret"); !errors.Is(err, ErrNotFound) {
		t.Errorf("CopyFrom through an absolute symlink to a host path: %v, want ErrNotFound", err)
	}
}
