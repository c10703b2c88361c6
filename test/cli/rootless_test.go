package cli_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestNothingRunsAsRoot: while a container with a bind mount runs, the daemon and every process it
// started (QEMU, the virtiofsd of the folder, anything else) run as the daemon's
// ordinary user: no real, effective, saved or filesystem uid or gid of 0. scripts/go-test.sh runs
// this package as an ordinary user; as root there is nothing to check.
func TestNothingRunsAsRoot(t *testing.T) {
	need(t)
	if os.Geteuid() == 0 {
		t.Skip("the daemon runs as root here: scripts/go-test.sh runs this test as an ordinary user")
	}
	t.Parallel()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "in.txt"), []byte("from the host\n"), 0o644)
	id := runDetached(t, "-v", dir+":/data", env.image, "sh", "-c", "cat /data/in.txt; exec sleep 3600")
	eventually(t, 60*time.Second, "the workload reads the folder", func() error {
		if !strings.Contains(skiff(t, "logs", id).stdout, "from the host") {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	procs := descendants(env.daemon.Pid())
	seen := map[string]int{}
	for _, pid := range append([]int{env.daemon.Pid()}, procs...) {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue // gone meanwhile
		}
		name, uids, gids := statusField(status, "Name"), statusField(status, "Uid"), statusField(status, "Gid")
		seen[name]++
		for _, f := range append(strings.Fields(uids), strings.Fields(gids)...) {
			if f == "0" {
				t.Errorf("process %d (%s) runs as root: Uid %s, Gid %s", pid, name, uids, gids)
				break
			}
		}
		if strings.Fields(uids)[0] != strconv.Itoa(os.Getuid()) {
			t.Errorf("process %d (%s) runs as uid %s, not the daemon's user %d", pid, name, uids, os.Getuid())
		}
	}
	t.Logf("the daemon's processes: %v", seen)
	// The check means something only if the helpers were there to be checked.
	if seen["virtiofsd"] < 1 || seen["qemu-system-x86"] < 1 {
		t.Errorf("want qemu and the folder's virtiofsd among the daemon's processes, found %v", seen)
	}
}

// statusField is the value of the "name:" line of a /proc/<pid>/status.
func statusField(status []byte, name string) string {
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// descendants are the pids of every process below pid, from the parent links in /proc.
func descendants(pid int) []int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(stat)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 {
			pp, _ := strconv.Atoi(f[1])
			children[pp] = append(children[pp], p)
		}
	}
	var out []int
	for queue := []int{pid}; len(queue) > 0; queue = queue[1:] {
		for _, c := range children[queue[0]] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}
