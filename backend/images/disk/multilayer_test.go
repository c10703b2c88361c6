package disk_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/skiff-containers/skiff/internal/testutil"
)

// The disk of the store's multilayer test image holds the tree the unpacker's tests expect of it
// (testutil.MultilayerExpect), with the owners and modes an unprivileged unpack can only record.
func TestBuildMultilayerImage(t *testing.T) {
	needE2fsprogs(t)
	dir, err := testutil.DebsDir()
	if err != nil {
		t.Skipf("test images: %v (run `make setup`)", err)
	}
	img, err := testutil.BuildMultilayer(dir)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	dst := build(t, layers)
	fsck(t, dst)
	for p, want := range testutil.MultilayerExpect {
		in := stat(t, dst, "/"+p)
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
			ok = in.Type == "regular" && cat(t, dst, "/"+p) == arg
		case "symlink":
			ok = in.Type == "symlink" && in.Target == arg
		case "hardlink":
			other := stat(t, dst, "/"+arg)
			ok = other != nil && other.Ino == in.Ino && in.Links >= 2
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
	if in := stat(t, dst, "/data/owned"); in == nil || in.Mode != 0o4750 || in.Uid != 1000 || in.Gid != 1000 {
		t.Errorf("/data/owned: %+v, want setuid 0750 owned by 1000:1000", in)
	}
	if in := stat(t, dst, "/home/app"); in == nil || in.Uid != 1000 || in.Gid != 1000 {
		t.Errorf("/home/app: %+v, want owned by 1000:1000", in)
	}
	if in := stat(t, dst, "/tmp"); in == nil || in.Mode != 0o1777 {
		t.Errorf("/tmp: %+v, want mode 1777", in)
	}
}

// Building needs no privilege. Run as root (as CI does), this test runs the owners test again in a
// copy of the test binary as uid and gid 65534 with no supplementary groups and no capabilities
// (setpriv), writing into a directory that user owns; run as anyone else, the owners test already
// proves it.
func TestBuildWithoutRoot(t *testing.T) {
	needE2fsprogs(t)
	if os.Geteuid() != 0 {
		t.Skip("not root: TestBuildCarriesOwnersModesAndLinks ran unprivileged already")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv (util-linux) not installed")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} { // the test's temporary directories are 0700
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "disk.test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	const nobody = 65534
	if err := os.Chown(tmp, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctxT(t), setpriv, "--reuid="+strconv.Itoa(nobody), "--regid="+strconv.Itoa(nobody),
		"--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
		bin, "-test.run=^TestBuildCarriesOwnersModesAndLinks$", "-test.count=1", "-test.v")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "TMPDIR=" + tmp, "HOME=" + tmp,
		"SKIFF_DISK_TEST_UID=" + strconv.Itoa(nobody)}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestBuildCarriesOwnersModesAndLinks") {
		t.Fatalf("as uid %d: %v\n%s", nobody, err, out)
	}
	t.Logf("as uid %d:\n%s", nobody, out)
}
