package proc

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A child of the no-setid spawner (a shell, as root or not) cannot set the
// setuid or setgid bit by any route, nor make a device node; everything
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
mknod p p; echo mknod-p=$?
mkdir d; echo mkdir=$?
`
	dir := t.TempDir()
	out := run(s, dir, script)
	for _, want := range []string{"chmod-u+s=1", "chmod-g+s=1", "open-u+s=1", "open=0", "chmod-sticky=0", "chmod=0", "mknod-p=0", "mkdir=0"} {
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
