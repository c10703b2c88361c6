package qemu

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The daemon's wrapper serves only the directory that was opened with no link followed: when the
// path leads elsewhere by the time it is mounted (a link planted between the open and the mount),
// it refuses; otherwise it execs the daemon without that fd, read-only when asked. Run as an ordinary
// user, it mounts in a user namespace, as the engine does.
func TestMountScript(t *testing.T) {
	pinned, other, mnt := t.TempDir(), t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(pinned, "f"), []byte("pinned"), 0o644)
	run := func(path string, ro bool, then string) (string, error) {
		d, err := openDirNoFollow(pinned)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		cmd := exec.Command("/bin/sh", "-c", mountScript(ro), path, mnt, "/bin/sh", "-c", then, "daemon", mnt)
		cmd.SysProcAttr = &syscall.SysProcAttr{}
		if os.Geteuid() != 0 {
			cmd.SysProcAttr = userNSAttr()
		}
		cmd.SysProcAttr.Unshareflags = syscall.CLONE_NEWNS
		cmd.ExtraFiles = []*os.File{os.Stdin, d} // fd 3, fd 4
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run(other, false, "echo served"); err == nil || !strings.Contains(out, "was replaced") || strings.Contains(out, "served") {
		t.Errorf("another directory at the path: %v, %q", err, out)
	}
	out, err := run(pinned, false, `cat "$1/f"; echo; [ -e /proc/self/fd/4 ] && echo fd4-open; touch "$1/new" && echo wrote`)
	if err != nil || out != "pinned\nwrote\n" {
		t.Errorf("the pinned directory: %v, %q", err, out)
	}
	out, _ = run(pinned, true, `touch "$1/ro" 2>&1 || echo refused`)
	if !strings.Contains(out, "Read-only file system") {
		t.Errorf("read-only: %q", out)
	}
	if _, err := os.Stat(filepath.Join(pinned, "ro")); err == nil {
		t.Error("a write reached the read-only share's directory")
	}
}
