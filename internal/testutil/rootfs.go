// Package testutil builds real fixtures for Skiff's tests: root
// filesystems, images and registries.
package testutil

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// HostBusybox is where Debian's busybox-static puts its binary.
const HostBusybox = "/bin/busybox"

// BusyboxRootfs builds a container root filesystem in a temporary
// directory from the host's static busybox: the binary at /bin/busybox,
// a symlink for every applet, /etc/passwd with root and app (1000:1000),
// /etc/group with staff (gid 50, app a member), /tmp, /root and /home/app.
// It skips the test when busybox-static is not installed (make setup
// installs it).
func BusyboxRootfs(t testing.TB) string {
	t.Helper()
	if err := checkStaticBusybox(); err != nil {
		t.Skipf("needs busybox-static (make setup installs it): %v", err)
	}
	dir := t.TempDir()
	if err := WriteBusyboxRootfs(dir); err != nil {
		t.Fatalf("building busybox rootfs: %v", err)
	}
	return dir
}

func checkStaticBusybox() error {
	f, err := elf.Open(HostBusybox)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return &os.PathError{Op: "check", Path: HostBusybox, Err: os.ErrInvalid}
		}
	}
	return nil
}

// WriteBusyboxRootfs fills dir with the rootfs BusyboxRootfs describes.
func WriteBusyboxRootfs(dir string) error {
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "home/app", "proc", "sys", "dev", "var/www"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o1777); err != nil {
		return err
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o1777); err != nil {
		return err
	}
	if err := os.Chown(filepath.Join(dir, "home/app"), 1000, 1000); err != nil && os.Geteuid() == 0 {
		return err
	}
	bin, err := os.ReadFile(HostBusybox)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), bin, 0o755); err != nil {
		return err
	}
	out, err := exec.Command(HostBusybox, "--list-full").Output()
	if err != nil {
		return err
	}
	for _, applet := range strings.Fields(string(out)) {
		p := filepath.Join(dir, applet)
		if applet == "bin/busybox" {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.Symlink("/bin/busybox", p); err != nil && !os.IsExist(err) {
			return err
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n" +
			"app:x:1000:1000:app:/home/app:/bin/sh\n" +
			"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group": "root:x:0:\n" +
			"tty:x:5:\n" +
			"staff:x:50:app\n" +
			"app:x:1000:\n" +
			"nogroup:x:65534:\n",
		"etc/hostname": "busybox\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}
