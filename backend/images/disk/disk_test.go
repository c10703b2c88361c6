package disk_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/skiff-containers/skiff/backend/images/disk"
	"github.com/skiff-containers/skiff/internal/testutil"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func layersOf(t testing.TB, builds ...func(b *testutil.TarBuilder)) []v1.Layer {
	t.Helper()
	var ls []v1.Layer
	for _, build := range builds {
		var b testutil.TarBuilder
		build(&b)
		l, err := b.Layer()
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
	}
	return ls
}

func hdr(name string, typ byte, mode int64, uid, gid int) *tar.Header {
	return &tar.Header{Name: name, Typeflag: typ, Mode: mode, Uid: uid, Gid: gid}
}

// ownersLayers is an image whose files belong to 0, 70 and 1000, with every kind of entry the disk
// must carry, and whiteouts, an opaque directory and hard links across its three layers.
func ownersLayers(t testing.TB) []v1.Layer {
	return layersOf(t, func(b *testutil.TarBuilder) {
		for _, d := range []string{"bin", "dev", "etc", "usr", "usr/bin", "usr/lib", "var", "var/lib", "home"} {
			b.Dir(d, 0o755)
		}
		b.Dir("tmp", 0o1777)
		b.Add(hdr("var/lib/postgresql/", tar.TypeDir, 0o755, 70, 70), nil)
		b.Add(hdr("var/lib/postgresql/data/", tar.TypeDir, 0o750, 70, 70), nil)
		b.Add(hdr("var/lib/postgresql/data/PG_VERSION", tar.TypeReg, 0o600, 70, 70), []byte("15\n"))
		b.Add(hdr("home/app/", tar.TypeDir, 0o755, 1000, 1000), nil)
		b.Add(hdr("home/app/secret", tar.TypeReg, 0o600, 1000, 50), []byte("s3cret"))
		b.Add(hdr("usr/bin/su", tar.TypeReg, 0o4755, 0, 0), []byte("su binary"))
		b.Add(hdr("usr/bin/wall", tar.TypeReg, 0o2755, 0, 5), []byte("wall binary"))
		ping := hdr("usr/bin/ping", tar.TypeReg, 0o755, 0, 0)
		ping.PAXRecords = map[string]string{"SCHILY.xattr.user.skiff": "hello",
			"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"}
		b.Add(ping, []byte("ping binary"))
		b.File("bin/busybox", 0o755, []byte("busybox binary"))
		b.Add(&tar.Header{Name: "bin/sh", Typeflag: tar.TypeLink, Linkname: "bin/busybox"}, nil)
		b.Symlink("bin/ls", "busybox")
		b.Add(&tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3}, nil)
		b.Add(&tar.Header{Name: "dev/initctl", Typeflag: tar.TypeFifo, Mode: 0o600}, nil)
		b.File("etc/motd", 0o644, []byte("v1"))
		b.Add(&tar.Header{Name: "etc/motd.orig", Typeflag: tar.TypeLink, Linkname: "etc/motd"}, nil)
		b.Symlink("lib", "usr/lib")
		b.File("usr/lib/old.so", 0o644, []byte("old"))
		b.Dir("old", 0o755)
		b.File("old/a", 0o644, []byte("a"))
		b.Dir("opq", 0o700)
		b.File("opq/x", 0o644, []byte("x"))
		b.Dir("opq/sub", 0o755)
		b.File("opq/sub/y", 0o644, []byte("y"))
		b.Dir("x", 0o755)
		b.File("x/y", 0o644, []byte("y"))
		b.File("big", 0o644, []byte(strings.Repeat("0123456789abcdef", 70000)))
	}, func(b *testutil.TarBuilder) {
		b.File(".wh.old", 0o644, nil)
		b.Dir("opq", 0o755)
		b.File("opq/.wh..wh..opq", 0o644, nil)
		b.File("opq/new", 0o644, []byte("new"))
		b.File("etc/motd", 0o644, []byte("v2"))
		b.File("lib/libz.so", 0o755, []byte("z"))
		b.File("bin/.wh.ls", 0o644, nil)
		b.Add(hdr("var/lib/postgresql/data/postmaster.opts", tar.TypeReg, 0o600, 70, 70), []byte("opts"))
		b.File("x", 0o644, []byte("x is a file now"))
		b.File("etc/fresh", 0o644, []byte("fresh"))
		b.File("etc/.wh.fresh", 0o644, nil) // hides lower layers only: etc/fresh stays
	}, func(b *testutil.TarBuilder) {
		b.File("lib/.wh.old.so", 0o644, nil) // through the symlink: usr/lib/old.so goes
		b.Add(&tar.Header{Name: "usr/bin/newgrp", Typeflag: tar.TypeLink, Linkname: "usr/bin/su"}, nil)
		b.File("bin/.wh.busybox", 0o644, nil)
		b.File("implicit/parent/file", 0o640, []byte("no parent entries"))
	})
}

func build(t *testing.T, layers []v1.Layer) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "rootfs.ext4")
	if err := disk.Build(ctxT(t), layers, dst, disk.Options{}); err != nil {
		t.Fatal(err)
	}
	return dst
}

// The disk carries what the layers say, whoever builds it: owners, modes, special bits, links,
// device nodes, xattrs, with whiteouts and the opaque directory applied.
func TestBuildCarriesOwnersModesAndLinks(t *testing.T) {
	needE2fsprogs(t)
	if want := os.Getenv("SKIFF_DISK_TEST_UID"); want != "" && want != strconv.Itoa(os.Geteuid()) {
		t.Fatalf("running as uid %d, want %s", os.Geteuid(), want)
	}
	img := filepath.Join(t.TempDir(), "rootfs.ext4")
	var done, total int64
	calls := 0
	err := disk.Build(ctxT(t), ownersLayers(t), img, disk.Options{Progress: func(d, tot int64) {
		if d < done || (total != 0 && tot != total) {
			t.Errorf("progress went from %d/%d to %d/%d", done, total, d, tot)
		}
		done, total = d, tot
		calls++
	}})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 3 || done != total || total < 16*70000 {
		t.Errorf("progress: %d calls, last %d/%d", calls, done, total)
	}
	fsck(t, img)
	checkOwners(t, img)
}

func checkOwners(t *testing.T, img string) {
	type want struct {
		typ             string
		mode, uid, gid  int
		links           int
		content, target string
		dev             string
	}
	for p, w := range map[string]want{
		"/var/lib/postgresql/data":                 {typ: "directory", mode: 0o750, uid: 70, gid: 70, links: 2},
		"/var/lib/postgresql/data/PG_VERSION":      {typ: "regular", mode: 0o600, uid: 70, gid: 70, links: 1, content: "15\n"},
		"/var/lib/postgresql/data/postmaster.opts": {typ: "regular", mode: 0o600, uid: 70, gid: 70, links: 1, content: "opts"},
		"/home/app":             {typ: "directory", mode: 0o755, uid: 1000, gid: 1000, links: 2},
		"/home/app/secret":      {typ: "regular", mode: 0o600, uid: 1000, gid: 50, links: 1, content: "s3cret"},
		"/usr/bin/su":           {typ: "regular", mode: 0o4755, links: 2, content: "su binary"},
		"/usr/bin/newgrp":       {typ: "regular", mode: 0o4755, links: 2, content: "su binary"},
		"/usr/bin/wall":         {typ: "regular", mode: 0o2755, gid: 5, links: 1, content: "wall binary"},
		"/tmp":                  {typ: "directory", mode: 0o1777, links: 2},
		"/bin/sh":               {typ: "regular", mode: 0o755, links: 1, content: "busybox binary"},
		"/dev/null":             {typ: "character special", mode: 0o666, links: 1, dev: "1:3"},
		"/dev/initctl":          {typ: "FIFO", mode: 0o600, links: 1},
		"/etc/motd":             {typ: "regular", mode: 0o644, links: 1, content: "v2"},
		"/etc/motd.orig":        {typ: "regular", mode: 0o644, links: 1, content: "v1"},
		"/lib":                  {typ: "symlink", mode: 0o777, links: 1, target: "usr/lib"},
		"/usr/lib/libz.so":      {typ: "regular", mode: 0o755, links: 1, content: "z"},
		"/opq":                  {typ: "directory", mode: 0o755, links: 2},
		"/opq/new":              {typ: "regular", mode: 0o644, links: 1, content: "new"},
		"/x":                    {typ: "regular", mode: 0o644, links: 1, content: "x is a file now"},
		"/implicit/parent":      {typ: "directory", mode: 0o755, links: 2},
		"/etc/fresh":            {typ: "regular", mode: 0o644, links: 1, content: "fresh"},
		"/implicit/parent/file": {typ: "regular", mode: 0o640, links: 1, content: "no parent entries"},
	} {
		in := stat(t, img, p)
		if in == nil {
			t.Errorf("%s: missing", p)
			continue
		}
		if in.Type != w.typ || in.Mode != w.mode || in.Uid != w.uid || in.Gid != w.gid || in.Links != w.links {
			t.Errorf("%s: %s %04o %d:%d links %d, want %s %04o %d:%d links %d", p, in.Type, in.Mode, in.Uid,
				in.Gid, in.Links, w.typ, w.mode, w.uid, w.gid, w.links)
		}
		if w.content != "" {
			if got := cat(t, img, p); got != w.content {
				t.Errorf("%s = %q, want %q", p, got, w.content)
			}
		}
		if in.Target != w.target || in.Dev != w.dev {
			t.Errorf("%s: target %q dev %q, want %q %q", p, in.Target, in.Dev, w.target, w.dev)
		}
	}
	for _, p := range []string{"/old", "/old/a", "/opq/x", "/opq/sub", "/bin/ls", "/bin/busybox", "/x/y", "/usr/lib/old.so"} {
		if stat(t, img, p) != nil {
			t.Errorf("%s exists, want it removed by a later layer", p)
		}
	}
	if a, b := stat(t, img, "/usr/bin/su"), stat(t, img, "/usr/bin/newgrp"); a == nil || b == nil || a.Ino != b.Ino {
		t.Errorf("/usr/bin/newgrp is not a hard link of /usr/bin/su")
	}
	ping := stat(t, img, "/usr/bin/ping")
	if ping == nil || ping.Xattrs["user.skiff"] != "hello" || ping.Xattrs["security.capability"] != "01 00 00 02 00 20 00 00 00 00 00 00 00 00 00 00 00 00 00 00" {
		t.Errorf("/usr/bin/ping xattrs: %+v", ping)
	}
	if got := cat(t, img, "/big"); got != strings.Repeat("0123456789abcdef", 70000) {
		t.Errorf("/big: %d bytes, want %d", len(got), 16*70000)
	}
	// The superblock marks the image read-only: the guest mounts it so whatever it is told.
	if out := debugfs(t, img, "features"); !strings.Contains(out, "read-only") {
		t.Errorf("features: %s, want read-only", out)
	}
}

// Zeros are holes: a disk whose content is mostly zeros takes little room on the host, and reads
// back the same.
func TestDiskIsSparse(t *testing.T) {
	needE2fsprogs(t)
	zeros := make([]byte, 8<<20)
	copy(zeros[4<<20:], "middle")
	img := build(t, layersOf(t, func(b *testutil.TarBuilder) { b.File("zeros", 0o644, zeros) }))
	fsck(t, img)
	fi, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	used := fi.Sys().(*syscall.Stat_t).Blocks * 512
	if fi.Size() < 8<<20 || used > 1<<20 {
		t.Errorf("disk is %d bytes, %d allocated: want > 8 MiB, < 1 MiB allocated", fi.Size(), used)
	}
	if got := cat(t, img, "/zeros"); got != string(zeros) {
		t.Errorf("/zeros reads back differently (%d bytes)", len(got))
	}
}

// A cancelled build stops and leaves nothing.
func TestCancelledBuildLeavesNothing(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	err := disk.Build(ctx, ownersLayers(t), filepath.Join(dir, "rootfs.ext4"), disk.Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Build: %v, want context.Canceled", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left %v", ents)
	}
}

// Two builds of the same layers give the same bytes (so a disk can be checked against a digest).
func TestBuildIsReproducible(t *testing.T) {
	a, b := build(t, ownersLayers(t)), build(t, ownersLayers(t))
	da, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	db, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(da, db) {
		t.Error("two builds of the same layers differ")
	}
}

// When the ext4 writer refuses an entry, the error says which and why (not that the stream stopped),
// and nothing is left.
func TestWriterErrorNamesTheEntry(t *testing.T) {
	dir := t.TempDir()
	h := hdr("etc/big-xattr", tar.TypeReg, 0o644, 0, 0)
	h.PAXRecords = map[string]string{"SCHILY.xattr.user.big": strings.Repeat("x", 5000)}
	layers := layersOf(t, func(b *testutil.TarBuilder) {
		b.Add(h, []byte("x"))
		b.File("etc/after", 0o644, make([]byte, 1<<20)) // more stream than the writer reads ahead
	})
	err := disk.Build(ctxT(t), layers, filepath.Join(dir, "rootfs.ext4"), disk.Options{})
	if err == nil || !strings.Contains(err.Error(), "etc/big-xattr") || !strings.Contains(err.Error(), "xattr user.big") {
		t.Fatalf("Build: %v, want an error naming etc/big-xattr and its xattr", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left %v", ents)
	}
}

// An image larger than MaxSize fails with ErrTooLarge.
func TestTooLarge(t *testing.T) {
	dir := t.TempDir()
	layers := layersOf(t, func(b *testutil.TarBuilder) { b.File("big", 0o644, []byte(strings.Repeat("y", 3<<20))) })
	err := disk.Build(ctxT(t), layers, filepath.Join(dir, "rootfs.ext4"), disk.Options{MaxSize: 2 << 20})
	if !errors.Is(err, disk.ErrTooLarge) {
		t.Fatalf("Build: %v, want ErrTooLarge", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left %v", ents)
	}
}
