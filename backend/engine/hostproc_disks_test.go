//go:build linux

package engine

import (
	"os/exec"
	"testing"

	"github.com/skiff-containers/skiff/backend/vm/hostproc"
)

// rootOf is the host directory a hostproc container runs in (see hostproc.DiskRoot).
func rootOf(t testing.TB, c *Container) string {
	t.Helper()
	if c.RootFS != "" {
		return c.RootFS
	}
	root, err := hostproc.DiskRoot(c.ImageDisk, c.UpperDisk)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func e2tool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return "/usr/sbin/" + name
}
