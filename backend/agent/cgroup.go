//go:build linux

package agent

import (
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

const cgroupRoot = "/sys/fs/cgroup"

// cgroups creates one cgroup v2 group per workload under
// /sys/fs/cgroup/skiff, when /sys/fs/cgroup is a cgroup2 mount. A nil
// *cgroups (no cgroup v2) creates nothing.
type cgroups struct {
	base string
	n    atomic.Int64
}

func newCgroups(log *zap.Logger) *cgroups {
	var fs unix.Statfs_t
	if err := unix.Statfs(cgroupRoot, &fs); err != nil || fs.Type != unix.CGROUP2_SUPER_MAGIC {
		return nil
	}
	base := filepath.Join(cgroupRoot, "skiff")
	if err := os.MkdirAll(base, 0o755); err != nil {
		log.Warn("cgroup v2 present but unusable", zap.Error(err))
		return nil
	}
	for _, dir := range []string{cgroupRoot, base} {
		for _, c := range []string{"+cpu", "+memory", "+io", "+pids"} {
			// Controllers the kernel lacks are simply not enabled.
			_ = os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte(c), 0)
		}
	}
	return &cgroups{base: base}
}

// cgroup is one workload's group; fd is for clone(CLONE_INTO_CGROUP).
type cgroup struct {
	dir string
	fd  int
}

func (m *cgroups) create(log *zap.Logger) *cgroup {
	if m == nil {
		return nil
	}
	dir := filepath.Join(m.base, "workload-"+strconv.FormatInt(m.n.Add(1), 10)+"-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		log.Warn("creating workload cgroup", zap.String("dir", dir), zap.Error(err))
		return nil
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		_ = os.Remove(dir)
		return nil
	}
	return &cgroup{dir: dir, fd: fd}
}

func (c *cgroup) remove() {
	if c == nil {
		return
	}
	unix.Close(c.fd)
	for i := 0; i < 50; i++ { // the last processes may still be leaving
		if err := os.Remove(c.dir); err == nil || os.IsNotExist(err) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
