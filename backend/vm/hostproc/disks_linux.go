package hostproc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
)

// diskRoot stands in for a machine whose root is on disks (Boot.Root == agentproto.RootFromDisks):
// a process cannot mount the image's ext4 and an overlay without root, so the image disk is
// extracted once (debugfs rdump, keeping owners and modes where the user may) into a directory
// beside the writable disk, and that directory is the root, writable, at every start; removing the
// container's directory removes it with the rest. The writable disk itself is left unused.
func diskRoot(spec vm.MachineSpec) (string, error) {
	var img, upper string
	for _, d := range spec.Disks {
		switch d.ID {
		case agentproto.ImageDiskID:
			img = d.Path
		case agentproto.UpperDiskID:
			upper = d.Path
		}
	}
	if img == "" || upper == "" {
		return "", fmt.Errorf("hostproc: machine %q: a root on disks needs disks %q and %q: %w",
			spec.ID, agentproto.ImageDiskID, agentproto.UpperDiskID, vm.ErrInvalidSpec)
	}
	return DiskRoot(img, upper)
}

// DiskRoot returns the directory standing in for the root of the container whose disks are img and
// upper, extracting img into it the first time (see diskRoot).
func DiskRoot(img, upper string) (string, error) {
	root := filepath.Join(filepath.Dir(upper), "hostproc-root")
	if _, err := os.Stat(root); err == nil {
		return root, nil
	}
	tmp := root + ".tmp"
	os.RemoveAll(tmp)
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return "", err
	}
	debugfs := e2tool("debugfs")
	out, err := exec.Command(debugfs, "-R", "ls -p /", img).Output()
	if err != nil {
		return "", fmt.Errorf("hostproc: listing %s: %w", img, err)
	}
	req := "rdump"
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Split(l, "/") // /ino/mode/uid/gid/name/size/
		if len(f) < 6 || f[5] == "." || f[5] == ".." || f[5] == "lost+found" || f[5] == "" {
			continue
		}
		req += " /" + f[5]
	}
	if out, err := exec.Command(debugfs, "-R", req+" "+tmp, img).CombinedOutput(); err != nil ||
		strings.Contains(string(out), "rdump:") {
		return "", fmt.Errorf("hostproc: extracting %s: %v: %s", img, err, out)
	}
	return root, os.Rename(tmp, root)
}

func e2tool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return "/usr/sbin/" + name
}
