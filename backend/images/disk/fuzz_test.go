package disk_test

import (
	"archive/tar"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/skiff-containers/skiff/backend/images/disk"
	"github.com/skiff-containers/skiff/internal/testutil"
)

// FuzzBuild feeds two arbitrary tarballs as layers: Build may fail, but never panics, leaves nothing
// behind when it fails, and what it writes e2fsck finds clean.
func FuzzBuild(f *testing.F) {
	needE2fsprogs(f)
	seeds := [][2]func(b *testutil.TarBuilder){
		{func(b *testutil.TarBuilder) { b.File("a/b/c", 0o644, []byte("x")) },
			func(b *testutil.TarBuilder) { b.File("a/.wh.b", 0o644, nil) }},
		{func(b *testutil.TarBuilder) { b.Symlink("l", "d"); b.Dir("d", 0o700) },
			func(b *testutil.TarBuilder) { b.File("l/x", 0o644, []byte("x")); b.Symlink("l/y", "../../..") }},
		{func(b *testutil.TarBuilder) { b.Dir("d", 0o755); b.File("d/x", 0o644, []byte("x")) },
			func(b *testutil.TarBuilder) { b.Dir("d", 0o755); b.File("d/.wh..wh..opq", 0o644, nil) }},
		{func(b *testutil.TarBuilder) {
			b.File("f", 0o644, []byte("x"))
			b.Add(&tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "f"}, nil)
		}, func(b *testutil.TarBuilder) { b.File("f", 0o600, []byte("y")); b.File("h/z", 0o644, nil) }},
		{func(b *testutil.TarBuilder) {
			b.Add(&tar.Header{Name: "dev/c", Typeflag: tar.TypeChar, Mode: 0o600, Devmajor: 4, Devminor: 64}, nil)
		}, func(b *testutil.TarBuilder) { b.File("../x", 0o644, nil) }},
	}
	for _, s := range seeds {
		var raws [2][]byte
		for i, build := range s {
			var b testutil.TarBuilder
			build(&b)
			raw, err := b.Tar()
			if err != nil {
				f.Fatal(err)
			}
			raws[i] = raw
		}
		f.Add(raws[0], raws[1])
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var layers []v1.Layer
		for _, raw := range [][]byte{a, b} {
			l, err := testutil.GzipLayer(raw)
			if err != nil {
				t.Fatal(err)
			}
			layers = append(layers, l)
		}
		dir := t.TempDir()
		dst := filepath.Join(dir, "rootfs.ext4")
		done := make(chan error, 1)
		go func() { done <- disk.Build(ctxT(t), layers, dst, disk.Options{MaxSize: 64 << 20}) }()
		var err error
		select {
		case err = <-done:
		case <-time.After(20 * time.Second):
			buf := make([]byte, 1<<20)
			t.Fatalf("Build hangs:\n%s", buf[:runtime.Stack(buf, true)])
		}
		ents, _ := os.ReadDir(dir)
		switch {
		case err != nil && len(ents) != 0:
			t.Fatalf("Build failed (%v) and left %v", err, ents)
		case err == nil && len(ents) != 1:
			t.Fatalf("Build succeeded and left %v", ents)
		case err == nil && len(a)+len(b) < 2048:
			fsck(t, dst) // small inputs only: e2fsck would otherwise be most of the fuzzing time
		}
	})
}
