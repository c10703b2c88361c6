//go:build linux

package engine

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
)

// hostprocDisks lets the host-process hypervisor, which has no block devices, run containers whose
// root is on disks: a container's image disk is extracted once (debugfs rdump, as root, keeping
// owners and modes) into a directory in the container's own directory, and that directory is its
// root share, writable, at every start; rm removes it with the rest. Only the hostproc tests use
// it: QEMU attaches the disks themselves (engine_qemu_test.go).
type hostprocDisks struct{ vm.Hypervisor }

func (h hostprocDisks) Start(ctx context.Context, spec vm.MachineSpec) (vm.Machine, error) {
	if spec.Boot.Root == agentproto.RootFromDisks {
		var img, upper string
		for _, d := range spec.Disks {
			switch d.ID {
			case agentproto.ImageDiskID:
				img = d.Path
			case agentproto.UpperDiskID:
				upper = d.Path
			}
		}
		root, err := hostprocRoot(img, upper)
		if err != nil {
			return nil, err
		}
		spec.Boot.Root, spec.Disks = "", nil
		spec.Shares = append([]vm.Share{{Tag: vm.RootShareTag, HostPath: root}}, spec.Shares...)
	}
	return h.Hypervisor.Start(ctx, spec)
}

// hostprocRoot returns the directory standing in for the root of the container whose disks are img
// and upper, extracting img into it the first time.
func hostprocRoot(img, upper string) (string, error) {
	root := filepath.Join(filepath.Dir(upper), "hostproc-root")
	if _, err := os.Stat(root); err == nil {
		return root, nil
	}
	tmp := root + ".tmp"
	os.RemoveAll(tmp)
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return "", err
	}
	out, err := exec.Command(e2tool("debugfs"), "-R", "ls -p /", img).Output()
	if err != nil {
		return "", fmt.Errorf("listing %s: %w", img, err)
	}
	req := "rdump"
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Split(l, "/") // /ino/mode/uid/gid/name/size/
		if len(f) < 6 || f[5] == "." || f[5] == ".." || f[5] == "lost+found" || f[5] == "" {
			continue
		}
		req += " /" + f[5]
	}
	if out, err := exec.Command(e2tool("debugfs"), "-R", req+" "+tmp, img).CombinedOutput(); err != nil ||
		strings.Contains(string(out), "rdump:") {
		return "", fmt.Errorf("extracting %s: %v: %s", img, err, out)
	}
	return root, os.Rename(tmp, root)
}

func e2tool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return "/usr/sbin/" + name
}

// rootOf is the host directory a hostproc container runs in (see hostprocDisks).
func rootOf(t testing.TB, c *Container) string {
	t.Helper()
	if c.RootFS != "" {
		return c.RootFS
	}
	root, err := hostprocRoot(c.ImageDisk, c.UpperDisk)
	if err != nil {
		t.Fatal(err)
	}
	return root
}
