package disk_test

import (
	"bytes"
	"context"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The disks are read back with Debian's e2fsprogs (installed by `make setup`): e2fsck for the
// filesystem's consistency, debugfs for what is in it. Both work on an image file without root.

func needE2fsprogs(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"debugfs", "e2fsck"} {
		if _, err := exec.LookPath(tool); err != nil {
			if _, err := exec.LookPath("/usr/sbin/" + tool); err != nil {
				t.Skipf("%s not installed (make setup installs e2fsprogs)", tool)
			}
		}
	}
}

func tool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return "/usr/sbin/" + name
}

// fsck runs a full, read-only check and fails the test on any finding.
func fsck(t testing.TB, img string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, tool("e2fsck"), "-fn", img).CombinedOutput()
	if err != nil {
		t.Fatalf("e2fsck -fn %s: %v\n%s", img, err, out)
	}
}

// debugfs runs one read-only debugfs request.
func debugfs(t testing.TB, img, req string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool("debugfs"), "-R", req, img)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("debugfs -R %q: %v\n%s", req, err, stderr.String())
	}
	// debugfs reports a missing path on stderr and still exits 0.
	if s := stderr.String(); strings.Contains(s, "File not found") {
		return ""
	}
	return stdout.String()
}

// inode is what debugfs's stat says about a path.
type inode struct {
	Ino, Uid, Gid, Links int
	Type                 string // "regular", "directory", "symlink", "character special", "FIFO", …
	Mode                 int    // permission bits with setuid, setgid and sticky
	Size                 int64
	Dev                  string // "major:minor" of a device node
	Target               string // a symlink's target
	Xattrs               map[string]string
}

var (
	reIno    = regexp.MustCompile(`Inode: (\d+)\s+Type: ([a-zA-Z ]+?)\s+Mode:\s+(\d+)`)
	reOwner  = regexp.MustCompile(`User:\s+(\d+)\s+Group:\s+(\d+)`)
	reSize   = regexp.MustCompile(`Size: (\d+)`)
	reLinks  = regexp.MustCompile(`Links: (\d+)`)
	reDev    = regexp.MustCompile(`Device major/minor number: (\d+):(\d+)`)
	reTarget = regexp.MustCompile(`Fast link dest: "(.*)"`)
	reXattr  = regexp.MustCompile(`(?m)^\s+([a-z]+\.\S+) \(\d+\) = (.*?)\s*$`) // "text" or hex bytes
)

// stat returns the inode at path, or nil when it does not exist.
func stat(t testing.TB, img, path string) *inode {
	t.Helper()
	out := debugfs(t, img, "stat "+path)
	m := reIno.FindStringSubmatch(out)
	if m == nil {
		return nil
	}
	in := &inode{Type: m[2], Xattrs: map[string]string{}}
	in.Ino, _ = strconv.Atoi(m[1])
	mode, _ := strconv.ParseInt(m[3], 8, 32)
	in.Mode = int(mode)
	if m := reOwner.FindStringSubmatch(out); m != nil {
		in.Uid, _ = strconv.Atoi(m[1])
		in.Gid, _ = strconv.Atoi(m[2])
	}
	if m := reSize.FindStringSubmatch(out); m != nil {
		in.Size, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := reLinks.FindStringSubmatch(out); m != nil {
		in.Links, _ = strconv.Atoi(m[1])
	}
	if m := reDev.FindStringSubmatch(out); m != nil {
		maj, _ := strconv.ParseInt(m[1], 10, 32)
		min, _ := strconv.ParseInt(m[2], 10, 32)
		in.Dev = strconv.Itoa(int(maj)) + ":" + strconv.Itoa(int(min))
	}
	if m := reTarget.FindStringSubmatch(out); m != nil {
		in.Target = m[1]
	}
	for _, m := range reXattr.FindAllStringSubmatch(out, -1) {
		in.Xattrs[m[1]] = strings.TrimSuffix(strings.TrimPrefix(m[2], `"`), `"`)
	}
	return in
}

// cat returns a file's content.
func cat(t testing.TB, img, path string) string {
	t.Helper()
	return debugfs(t, img, "cat "+path)
}
