package docker_test

import (
	"strings"
	"testing"
	"time"
)

// TestTop: `docker top` lists the container's processes, in ps -ef's columns, as its guest sees
// them; a stopped container is refused.
func TestTop(t *testing.T) {
	need(t)
	loadBusybox(t)
	dockerOK(t, "run", "-d", "--name", "topc", "busybox", "sh", "-c", "sleep 300 & sleep 301; true")
	defer docker(t, "rm", "-f", "topc")
	// `run -d` returns once the shell started; its two children follow a moment later.
	var out string
	var lines []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out = dockerOK(t, "top", "topc")
		if lines = strings.Split(strings.TrimSpace(out), "\n"); len(lines) >= 4 || time.Now().After(deadline) {
			break
		}
	}
	if len(lines) != 4 || strings.Join(strings.Fields(lines[0]), " ") != "UID PID PPID C STIME TTY TIME CMD" {
		t.Fatalf("docker top: %q, want the titles and three processes", out)
	}
	f := strings.Fields(lines[1])
	if f[0] != "root" || f[1] != "1" || f[2] != "0" || !strings.HasSuffix(lines[1], "sh -c sleep 300 & sleep 301; true") {
		t.Errorf("pid 1: %q", lines[1])
	}
	for _, want := range []string{"sleep 300", "sleep 301"} {
		if !strings.Contains(out, want) {
			t.Errorf("docker top: no %q in %q", want, out)
		}
	}
	dockerOK(t, "kill", "topc")
	if r := docker(t, "top", "topc"); r.code == 0 || !strings.Contains(r.stderr, "is not running") {
		t.Errorf("docker top of a stopped container: %s", r)
	}
}
