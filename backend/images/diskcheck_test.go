package images_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/images"
	"github.com/skiff-containers/skiff/internal/testutil"
)

// An image's filesystem is its disk (Store.Disk); tests read it back with Debian's e2fsprogs
// (debugfs works on an image file without root).

func e2tool(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p, err := exec.LookPath("/usr/sbin/" + name); err == nil {
		return p
	}
	t.Skipf("%s not installed (make setup installs e2fsprogs)", name)
	return ""
}

// diskOf returns the path of img's disk.
func diskOf(t testing.TB, s *images.Store, img *images.Image) string {
	t.Helper()
	p, err := s.Disk(context.Background(), img.ID, nil)
	if err != nil {
		t.Fatalf("disk of %s: %v", img.ID, err)
	}
	return p
}

func debugfsReq(t testing.TB, img, req string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e2tool(t, "debugfs"), "-R", req, img)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("debugfs -R %q %s: %v\n%s", req, img, err, stderr.String())
	}
	if strings.Contains(stderr.String(), "File not found") {
		return ""
	}
	return string(out)
}

type dInode struct {
	Ino, Uid, Gid, Links, Mode int
	Type, Dev, Target          string
	Mtime                      int64
}

var (
	dReIno    = regexp.MustCompile(`Inode: (\d+)\s+Type: ([a-zA-Z ]+?)\s+Mode:\s+(\d+)`)
	dReOwner  = regexp.MustCompile(`User:\s+(\d+)\s+Group:\s+(\d+)`)
	dReLinks  = regexp.MustCompile(`Links: (\d+)`)
	dReDev    = regexp.MustCompile(`Device major/minor number: (\d+):(\d+)`)
	dReTarget = regexp.MustCompile(`Fast link dest: "(.*)"`)
	dReMtime  = regexp.MustCompile(`mtime: (0x[0-9a-f]+)`)
)

// dstat is debugfs's stat of path in disk, nil when it does not exist.
func dstat(t testing.TB, disk, path string) *dInode {
	t.Helper()
	out := debugfsReq(t, disk, "stat "+path)
	m := dReIno.FindStringSubmatch(out)
	if m == nil {
		return nil
	}
	in := &dInode{Type: m[2]}
	in.Ino, _ = strconv.Atoi(m[1])
	mode, _ := strconv.ParseInt(m[3], 8, 32)
	in.Mode = int(mode)
	if m := dReOwner.FindStringSubmatch(out); m != nil {
		in.Uid, _ = strconv.Atoi(m[1])
		in.Gid, _ = strconv.Atoi(m[2])
	}
	if m := dReLinks.FindStringSubmatch(out); m != nil {
		in.Links, _ = strconv.Atoi(m[1])
	}
	if m := dReDev.FindStringSubmatch(out); m != nil {
		maj, _ := strconv.Atoi(m[1])
		min, _ := strconv.Atoi(m[2])
		in.Dev = strconv.Itoa(maj) + ":" + strconv.Itoa(min)
	}
	if m := dReTarget.FindStringSubmatch(out); m != nil {
		in.Target = m[1]
	}
	if m := dReMtime.FindStringSubmatch(out); m != nil {
		in.Mtime, _ = strconv.ParseInt(m[1], 0, 64)
	}
	return in
}

// dcat is the content of a file in disk.
func dcat(t testing.TB, disk, path string) string {
	t.Helper()
	return debugfsReq(t, disk, "cat "+path)
}

// checkTree checks an image's disk against testutil.MultilayerExpect, owners and modes included.
func checkTree(t *testing.T, s *images.Store, img *images.Image) {
	t.Helper()
	disk := diskOf(t, s, img)
	for p, want := range testutil.MultilayerExpect {
		in := dstat(t, disk, "/"+p)
		kind, arg, _ := strings.Cut(want, " ")
		if kind == "" {
			if in != nil {
				t.Errorf("%s exists, want it deleted", p)
			}
			continue
		}
		if in == nil {
			t.Errorf("%s: missing", p)
			continue
		}
		ok := true
		switch kind {
		case "dir":
			ok = in.Type == "directory"
		case "file":
			ok = in.Type == "regular" && dcat(t, disk, "/"+p) == arg
		case "symlink":
			ok = in.Type == "symlink" && in.Target == arg
		case "hardlink":
			other := dstat(t, disk, "/"+arg)
			ok = other != nil && other.Ino == in.Ino
		case "fifo":
			ok = in.Type == "FIFO"
		case "chardev":
			ok = in.Type == "character special" && in.Dev == strings.ReplaceAll(arg, " ", ":")
		default:
			t.Fatalf("bad expectation %q", want)
		}
		if !ok {
			t.Errorf("%s: %+v, want %s", p, in, want)
		}
	}
	if in := dstat(t, disk, "/replace-me"); in == nil || in.Mode != 0o600 {
		t.Errorf("replace-me: %+v, want mode 0600", in)
	}
	if in := dstat(t, disk, "/data/owned"); in == nil || in.Mode != 0o4750 || in.Uid != 1000 || in.Gid != 1000 {
		t.Errorf("/data/owned: %+v, want setuid 0750 owned by 1000:1000", in)
	}
	for _, p := range []string{"data", "opq", "data/b", "keep/deep", "data/sl"} {
		if in := dstat(t, disk, "/"+p); in == nil || in.Mtime != testutil.FixtureTime.Unix() {
			t.Errorf("%s: %+v, want mtime %v", p, in, testutil.FixtureTime)
		}
	}
}

// disks counts the image disks in the store.
func disks(t *testing.T, s *images.Store) int {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(s.Dir(), "disks"))
	n := 0
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".ext4") && !strings.HasPrefix(e.Name(), ".") {
			n++
		}
	}
	return n
}
