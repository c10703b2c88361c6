//go:build linux

package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/skiff-containers/skiff/backend/agentproto"
)

// TestOverlayChanges: the upper directory of an overlay, read against its lower one, gives
// Docker's diff: A for what lower lacks, C for what both have (and every directory above a
// change), D for whiteouts and an opaque directory over one of lower; directories copied up only
// for their content, and the agent's identity files, are not changes.
func TestOverlayChanges(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("whiteouts (0/0 character devices) and trusted.* xattrs need root")
	}
	lower, upper := t.TempDir(), t.TempDir()
	mk := func(root string, dirs []string, files ...string) {
		for _, d := range dirs {
			if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for _, f := range files {
			if err := os.WriteFile(filepath.Join(root, f), []byte(f), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk(lower, []string{"etc", "bin", "usr/lib", "var/cache", "tmp"}, "etc/passwd", "etc/group", "bin/sh", "usr/lib/a", "var/cache/x")
	mk(upper, []string{"etc", "usr/lib", "var/cache", "tmp", "root/new"}, "etc/passwd", "etc/hosts", "etc/hostname", "tmp/t", "root/new/f", "var/cache/y")
	for _, p := range []string{"bin/sh", "usr/lib/a"} { // whiteouts
		os.MkdirAll(filepath.Dir(filepath.Join(upper, p)), 0o755)
		if err := unix.Mknod(filepath.Join(upper, p), unix.S_IFCHR, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Setxattr(filepath.Join(upper, "var/cache"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Skipf("trusted xattrs on %s: %v", upper, err)
	}
	os.Chmod(filepath.Join(upper, "tmp"), 0o1777) // a directory whose mode changed

	var got []string
	err := overlayChanges(context.Background(), upper, lower, func(c agentproto.Change) error {
		got = append(got, c.Kind+" "+c.Path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"C /bin", "D /bin/sh",
		"C /etc", "C /etc/passwd",
		"A /root", "A /root/new", "A /root/new/f",
		"C /tmp", "A /tmp/t",
		"C /usr", "C /usr/lib", "D /usr/lib/a",
		"C /var", "D /var/cache", "A /var/cache/y",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
