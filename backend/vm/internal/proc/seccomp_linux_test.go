package proc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A child of the no-setid spawner (a shell, as root or not) cannot set the
// setuid or setgid bit by any route, nor make a device node (not even the 0:0
// whiteout, which needs no privilege); everything
// else about modes still works. The plain spawner's child can (as root).
func TestNoSetidSpawner(t *testing.T) {
	s, err := NewNoSetidSpawner()
	if err != nil {
		t.Fatal(err)
	}
	run := func(sp *Spawner, dir, script string) string {
		t.Helper()
		cmd := exec.Command("/bin/sh", "-c", script)
		cmd.Dir = dir
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := sp.Start(cmd); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		return out.String()
	}
	const script = `
touch f; chmod 4755 f; echo chmod-u+s=$?; chmod 2755 f; echo chmod-g+s=$?; chmod 1755 f; echo chmod-sticky=$?
chmod 0640 f; echo chmod=$?
perl -e 'use Fcntl; sysopen(F, "o", O_CREAT|O_WRONLY, 04755) or exit 1'; echo open-u+s=$?
perl -e 'use Fcntl; sysopen(F, "o2", O_CREAT|O_WRONLY, 0755) or exit 1'; echo open=$?
mknod c c 1 3 2>/dev/null; echo mknod-c=$?
mknod w c 0 0 2>/dev/null; echo mknod-whiteout=$?
mknod p p; echo mknod-p=$?
mkdir d; echo mkdir=$?
`
	dir := t.TempDir()
	out := run(s, dir, script)
	for _, want := range []string{"chmod-u+s=1", "chmod-g+s=1", "open-u+s=1", "open=0", "chmod-sticky=0", "chmod=0", "mknod-whiteout=1",
		"mknod-p=0", "mkdir=0"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("filtered: want %s in\n%s", want, out)
		}
	}
	if os.Geteuid() == 0 && !strings.Contains(out, "mknod-c=1\n") {
		t.Errorf("filtered: a device node was made:\n%s", out)
	}
	noSetid(t, dir)
	t.Logf("filtered:\n%s", out)

	if os.Geteuid() != 0 {
		return
	}
	// The plain spawner's children keep root's powers: the filter is what stops them.
	dir = t.TempDir()
	out = run(NewSpawner(), dir, script)
	if !strings.Contains(out, "chmod-u+s=0\n") || !strings.Contains(out, "open-u+s=0\n") || !strings.Contains(out, "mknod-c=0\n") {
		t.Errorf("unfiltered: %s", out)
	}
}

// noSetid fails the test for any setuid, setgid or device file under dir.
func noSetid(t *testing.T, dir string) {
	t.Helper()
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			t.Error(err)
			return nil
		}
		if fi.Mode()&(os.ModeSetuid|os.ModeSetgid|os.ModeDevice|os.ModeCharDevice) != 0 {
			t.Errorf("%s: mode %v", p, fi.Mode())
		}
		return nil
	})
}

// In a user namespace whose gid map an unprivileged process wrote, the kernel refuses
// setgroups; a child of the user-namespace spawner gets a no-op success for setgroups(0)
// (virtiofsd drops its supplementary groups at start and exits when that fails), while a
// child of the plain spawner gets EPERM. The test binary itself is the child.
func TestUserNSSpawnerSetgroups(t *testing.T) {
	userns, err := NewUserNSSpawner()
	if err != nil {
		t.Fatal(err)
	}
	run := func(s *Spawner) string {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run", "^$")
		cmd.Env = append(os.Environ(), "PROC_TEST_SETGROUPS=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Cloneflags:  syscall.CLONE_NEWUSER,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}},
		}
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := s.Start(cmd); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		return out.String()
	}
	if out := run(userns); !strings.Contains(out, "setgroups: <nil>") {
		t.Errorf("under the filter: %q", out)
	}
	if out := run(NewSpawner()); !strings.Contains(out, "setgroups: operation not permitted") {
		t.Errorf("without the filter: %q", out)
	}
}

func init() {
	if os.Getenv("PROC_TEST_SETGROUPS") == "1" {
		fmt.Printf("setgroups: %v\n", syscall.Setgroups(nil))
		os.Exit(0)
	}
}
