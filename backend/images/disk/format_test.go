package disk_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/images/disk"
)

// dumpe2fs returns the superblock fields `dumpe2fs -h` prints, by name.
func dumpe2fs(t *testing.T, img string) map[string]string {
	t.Helper()
	out, err := exec.Command(tool("dumpe2fs"), "-h", img).Output()
	if err != nil {
		t.Fatalf("dumpe2fs -h %s: %v", img, err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}

// An empty writable disk is a clean ext4 of the size asked (rounded down to 4 KiB), with a journal
// and without the read-only feature an image disk has, and costs the host next to nothing.
func TestFormatEmpty(t *testing.T) {
	needE2fsprogs(t)
	dir := t.TempDir()
	for _, size := range []int64{disk.MinWritableSize, 1 << 30, 20<<30 + 8<<20 + 12345} {
		img := filepath.Join(dir, "upper.ext4")
		os.Remove(img)
		if err := disk.FormatEmpty(img, size); err != nil {
			t.Fatal(err)
		}
		fsck(t, img)
		sb := dumpe2fs(t, img)
		if got, want := sb["Block count"], itoa(size/4096); got != want {
			t.Errorf("size %d: block count %s, want %s", size, got, want)
		}
		feats := " " + sb["Filesystem features"] + " "
		for _, f := range []string{"has_journal", "extent", "filetype", "flex_bg", "dir_index"} {
			if !strings.Contains(feats, " "+f+" ") {
				t.Errorf("size %d: feature %s missing: %s", size, f, feats)
			}
		}
		if strings.Contains(feats, "read-only") {
			t.Errorf("size %d: the writable disk has the read-only feature: %s", size, feats)
		}
		fi, err := os.Stat(img)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != size/4096*4096 {
			t.Errorf("size %d: file is %d bytes", size, fi.Size())
		}
		if used := fi.Sys().(*syscall.Stat_t).Blocks * 512; used > 4<<20 {
			t.Errorf("size %d: the empty disk takes %d bytes on the host; it should be sparse", size, used)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("mode %v, want 0600", fi.Mode().Perm())
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
}

// e2fsprogs' own library can write into it: files, directories, and the result still checks clean.
func TestFormatEmptyWritable(t *testing.T) {
	needE2fsprogs(t)
	img := filepath.Join(t.TempDir(), "upper.ext4")
	if err := disk.FormatEmpty(img, 256<<20); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(src, []byte(strings.Repeat("skiff", 100000)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, req := range []string{"mkdir /upper", "mkdir /work", "write " + src + " /upper/data"} {
		if out, err := exec.CommandContext(ctx, tool("debugfs"), "-w", "-R", req, img).CombinedOutput(); err != nil {
			t.Fatalf("debugfs -w %q: %v\n%s", req, err, out)
		}
	}
	fsck(t, img)
	if out := debugfs(t, img, "stat /upper/data"); !strings.Contains(out, "Size: 500000") {
		t.Errorf("the file written is not there:\n%s", out)
	}
}

// As root, Linux mounts it read-write at its full size (the guest kernel does the same).
func TestFormatEmptyMountsReadWrite(t *testing.T) {
	needE2fsprogs(t)
	if os.Geteuid() != 0 {
		t.Skip("mounting a loop device needs root")
	}
	img := filepath.Join(t.TempDir(), "upper.ext4")
	if err := disk.FormatEmpty(img, 2<<30); err != nil {
		t.Fatal(err)
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Skipf("loop mount not available here: %v: %s", err, out)
	}
	mounted := true
	defer func() {
		if mounted {
			exec.Command("umount", mnt).Run()
		}
	}()
	var st syscall.Statfs_t
	if err := syscall.Statfs(mnt, &st); err != nil {
		t.Fatal(err)
	}
	if avail := int64(st.Bavail) * int64(st.Bsize); avail < 1900<<20 {
		t.Errorf("%d bytes available on a 2 GiB disk", avail)
	}
	if err := os.MkdirAll(filepath.Join(mnt, "upper", "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "upper", "d", "f"), make([]byte, 64<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v: %s", err, out)
	}
	mounted = false
	fsck(t, img)
}

func TestFormatEmptyBadSize(t *testing.T) {
	dir := t.TempDir()
	for _, size := range []int64{0, -1, disk.MinWritableSize - 1, disk.MaxWritableSize + 1} {
		err := disk.FormatEmpty(filepath.Join(dir, "x"), size)
		if !errors.Is(err, disk.ErrBadSize) {
			t.Errorf("size %d: %v, want ErrBadSize", size, err)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("files left: %v", ents)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
