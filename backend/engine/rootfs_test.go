package engine

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestCloneTreePreservesMetadata(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "bin"), 0o755))
	must(os.MkdirAll(filepath.Join(src, "ro"), 0o755))
	must(os.WriteFile(filepath.Join(src, "bin", "busybox"), []byte("#!binary"), 0o755))
	must(os.Link(filepath.Join(src, "bin", "busybox"), filepath.Join(src, "bin", "sh")))
	must(os.Symlink("busybox", filepath.Join(src, "bin", "ls")))
	must(os.Symlink("/nonexistent/abs", filepath.Join(src, "dangling")))
	must(os.WriteFile(filepath.Join(src, "ro", "f"), []byte("data"), 0o640))
	must(os.WriteFile(filepath.Join(src, "suid"), nil, 0o755))
	must(os.Chmod(filepath.Join(src, "suid"), 0o755|os.ModeSetuid))
	must(unix.Mkfifo(filepath.Join(src, "fifo"), 0o600))
	xattr := unix.Setxattr(filepath.Join(src, "ro", "f"), "user.skiff", []byte("v"), 0) == nil
	if os.Geteuid() == 0 {
		must(os.Lchown(filepath.Join(src, "ro", "f"), 1234, 5678))
	}
	must(os.Chmod(filepath.Join(src, "ro"), 0o555))
	old := time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC)
	must(os.Chtimes(filepath.Join(src, "ro", "f"), old, old))
	must(os.Chtimes(filepath.Join(src, "ro"), old, old))
	must(unix.Lutimes(filepath.Join(src, "bin", "ls"), []unix.Timeval{unix.NsecToTimeval(old.UnixNano()), unix.NsecToTimeval(old.UnixNano())}))

	dst := filepath.Join(t.TempDir(), "dst")
	must(cloneTree(context.Background(), src, dst))
	t.Cleanup(func() { _ = removeAll(dst) })

	st := func(p string) *syscall.Stat_t {
		t.Helper()
		fi, err := os.Lstat(filepath.Join(dst, p))
		must(err)
		return fi.Sys().(*syscall.Stat_t)
	}
	if st("bin/busybox").Ino != st("bin/sh").Ino {
		t.Error("hardlink not preserved")
	}
	if l, _ := os.Readlink(filepath.Join(dst, "bin", "ls")); l != "busybox" {
		t.Errorf("symlink target %q", l)
	}
	if l, _ := os.Readlink(filepath.Join(dst, "dangling")); l != "/nonexistent/abs" {
		t.Errorf("dangling symlink target %q", l)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "ro", "f")); string(b) != "data" {
		t.Errorf("content %q", b)
	}
	for p, mode := range map[string]uint32{"ro": 0o555, "ro/f": 0o640, "bin/busybox": 0o755, "suid": 0o4755} {
		if got := uint32(st(p).Mode) & 0o7777; got != mode {
			t.Errorf("%s mode %o, want %o", p, got, mode)
		}
	}
	if st("fifo").Mode&syscall.S_IFMT != syscall.S_IFIFO {
		t.Error("fifo not recreated")
	}
	for _, p := range []string{"ro", "ro/f", "bin/ls"} {
		if _, m := statTimes(st(p)); !time.Unix(0, m).Equal(old) {
			t.Errorf("%s mtime %v, want %v", p, time.Unix(0, m).UTC(), old)
		}
	}
	if os.Geteuid() == 0 && (st("ro/f").Uid != 1234 || st("ro/f").Gid != 5678) {
		t.Errorf("owner %d:%d", st("ro/f").Uid, st("ro/f").Gid)
	}
	if xattr {
		buf := make([]byte, 8)
		n, err := unix.Getxattr(filepath.Join(dst, "ro", "f"), "user.skiff", buf)
		if err != nil || string(buf[:n]) != "v" {
			t.Errorf("xattr: %q, %v", buf[:n], err)
		}
	}
	// Writes to the clone do not reach the image.
	must(os.WriteFile(filepath.Join(dst, "bin", "busybox"), []byte("changed"), 0o755))
	if b, _ := os.ReadFile(filepath.Join(src, "bin", "busybox")); string(b) != "#!binary" {
		t.Error("clone shares data with the image")
	}
	if err := removeAll(dst); err != nil {
		t.Errorf("removeAll of a tree with read-only dirs: %v", err)
	}
}
