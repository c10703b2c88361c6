package vm

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/u-root/u-root/pkg/cpio"

	"github.com/skiff-containers/skiff/backend/vm/agentbin"
)

func readInitramfs(t *testing.T, path string) map[string]cpio.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]cpio.Record{}
	for _, r := range recs {
		out[r.Name] = r
	}
	return out
}

func TestBuildInitramfs(t *testing.T) {
	ctx := context.Background()
	bdir := t.TempDir()
	fakeBundle(t, bdir, "arm64", "1")
	b, err := LoadBundle(bdir)
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	p, err := BuildInitramfsWithInit(ctx, b, []byte("\x7fELF fake init"), cache)
	if err != nil {
		t.Fatal(err)
	}
	recs := readInitramfs(t, p)
	want := map[string]string{
		"init":               "\x7fELF fake init",
		"lib/modules/a.ko":   "a",
		"lib/modules/b-c.ko": "b",
		"lib/modules/order":  "a.ko\nb-c.ko\n",
	}
	for name, w := range want {
		r, ok := recs[name]
		if !ok {
			t.Fatalf("%s missing from the initramfs", name)
		}
		data := make([]byte, r.FileSize)
		if _, err := r.ReadAt(data, 0); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if string(data) != w {
			t.Errorf("%s = %q, want %q", name, data, w)
		}
	}
	if recs["init"].Mode&0o111 == 0 {
		t.Error("/init is not executable")
	}
	if r, ok := recs["dev/console"]; !ok || r.Mode&cpio.S_IFMT != cpio.S_IFCHR || r.Rmajor != 5 || r.Rminor != 1 {
		t.Errorf("dev/console: %+v", r.Info)
	}

	// Cached by (init, bundle): the same inputs give the same file untouched;
	// another init or bundle gives another file.
	info1, _ := os.Stat(p)
	p2, err := BuildInitramfsWithInit(ctx, b, []byte("\x7fELF fake init"), cache)
	if err != nil || p2 != p {
		t.Fatalf("second build: %s, %v; want %s", p2, err, p)
	}
	if info2, _ := os.Stat(p2); !info2.ModTime().Equal(info1.ModTime()) {
		t.Error("cached initramfs was rewritten")
	}
	p3, _ := BuildInitramfsWithInit(ctx, b, []byte("\x7fELF other init"), cache)
	b.Manifest.Version = "2"
	p4, _ := BuildInitramfsWithInit(ctx, b, []byte("\x7fELF fake init"), cache)
	if p3 == p || p4 == p || p3 == p4 {
		t.Fatalf("cache keys collide: %s %s %s", p, p3, p4)
	}
	if left, _ := filepath.Glob(filepath.Join(cache, ".tmp*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}

	// The embedded agent: either present, or a clear error.
	if _, err := agentbin.Agent("arm64"); err != nil {
		_, err := BuildInitramfs(ctx, b, cache)
		if !errors.Is(err, ErrAgentMissing) || !bytes.Contains([]byte(err.Error()), []byte("make agent")) {
			t.Fatalf("BuildInitramfs without agent: %v", err)
		}
	} else if _, err := BuildInitramfs(ctx, b, cache); err != nil {
		t.Fatal(err)
	}
}

// A bundle without modules (a kernel with its drivers built in) gives an
// initramfs without lib/modules: nothing for the agent to read or load.
func TestBuildInitramfsNoModules(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "vmlinuz"), []byte("kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, _ := fileDigest(filepath.Join(dir, "vmlinuz"))
	writeManifest(t, dir, Manifest{Arch: "amd64", Version: "6.1.0-skiff", Kernel: "vmlinuz", Modules: []string{}, Files: map[string]string{"vmlinuz": d}})
	b, err := LoadBundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := BuildInitramfsWithInit(context.Background(), b, []byte("\x7fELF fake init"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	recs := readInitramfs(t, p)
	if _, ok := recs["init"]; !ok {
		t.Fatal("init missing from the initramfs")
	}
	for name := range recs {
		if strings.HasPrefix(name, "lib") {
			t.Errorf("%s in the initramfs of a bundle without modules", name)
		}
	}
}
