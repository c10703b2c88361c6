package cli_test

import (
	"strings"
	"testing"
	"time"
)

// TestTopAndDiff: `skiff top` lists a running container's processes in ps -ef's columns (pid 1
// its workload, as the container sees it) and refuses a stopped one; `skiff diff` lists what the
// container changed against its image, running and stopped.
func TestTopAndDiff(t *testing.T) {
	need(t)
	t.Parallel()
	id := runDetached(t, env.image, "sh", "-c", "sleep 300 & sleep 301; true")
	// `run -d` returns once the shell started; its two children follow a moment later.
	var out string
	var lines []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out = ok(t, "top", id)
		if lines = strings.Split(strings.TrimSpace(out), "\n"); len(lines) >= 4 || time.Now().After(deadline) {
			break
		}
	}
	if len(lines) != 4 || strings.Join(strings.Fields(lines[0]), " ") != "UID PID PPID C STIME TTY TIME CMD" {
		t.Fatalf("skiff top: %q, want the titles and three processes", out)
	}
	if f := strings.Fields(lines[1]); f[0] != "root" || f[1] != "1" || f[2] != "0" || !strings.HasSuffix(lines[1], "sh -c sleep 300 & sleep 301; true") {
		t.Errorf("skiff top, pid 1: %q", lines[1])
	}
	for _, want := range []string{"sleep 300", "sleep 301"} {
		if !strings.Contains(out, want) {
			t.Errorf("skiff top: no %q in %q", want, out)
		}
	}

	ok(t, "exec", id, "sh", "-c", "mkdir /srv && echo x > /srv/f && rm /etc/group")
	want := "C /etc\nD /etc/group\nA /srv\nA /srv/f"
	if out := strings.TrimSpace(ok(t, "diff", id)); out != want {
		t.Errorf("skiff diff of a running container:\n%s\nwant:\n%s", out, want)
	}
	ok(t, "kill", id)
	ok(t, "wait", id)
	if r := skiff(t, "top", id); r.code == 0 || !strings.Contains(r.stderr, "not running") {
		t.Errorf("skiff top of a stopped container: %s", r)
	}
	if out := strings.TrimSpace(ok(t, "diff", id)); out != want {
		t.Errorf("skiff diff of a stopped container:\n%s\nwant:\n%s", out, want)
	}
	if r := skiff(t, "diff", "nosuchctr"); r.code == 0 || !strings.Contains(r.stderr, "nosuchctr") {
		t.Errorf("skiff diff of a missing container: %s", r)
	}
}
