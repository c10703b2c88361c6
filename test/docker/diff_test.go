package docker_test

import (
	"strings"
	"testing"
)

// TestDiff: `docker diff` lists what a container changed against its image (its writable
// layer: A added, C changed, D deleted, every directory above a change as C), the same while it
// runs and once it has stopped; the files the engine writes itself (/etc/hosts, …) are not listed.
func TestDiff(t *testing.T) {
	need(t)
	loadBusybox(t)
	dockerOK(t, "run", "-d", "--name", "diffc", "busybox", "sleep", "300")
	defer docker(t, "rm", "-f", "diffc")
	if out := dockerOK(t, "diff", "diffc"); strings.TrimSpace(out) != "" {
		t.Errorf("docker diff of a fresh container: %q, want nothing", out)
	}
	dockerOK(t, "exec", "diffc", "sh", "-c",
		"echo x >> /etc/passwd && rm /etc/group && mkdir -p /home/app/new && echo f > /home/app/new/f")
	want := "C /etc\nD /etc/group\nC /etc/passwd\nC /home\nC /home/app\nA /home/app/new\nA /home/app/new/f"
	if out := strings.TrimSpace(dockerOK(t, "diff", "diffc")); out != want {
		t.Errorf("docker diff of a running container:\n%s\nwant:\n%s", out, want)
	}
	dockerOK(t, "stop", "-t", "1", "diffc")
	if out := strings.TrimSpace(dockerOK(t, "diff", "diffc")); out != want {
		t.Errorf("docker diff of a stopped container:\n%s\nwant:\n%s", out, want)
	}
	if r := docker(t, "diff", "nosuchctr"); r.code == 0 || !strings.Contains(r.stderr, "No such container: nosuchctr") {
		t.Errorf("docker diff of a missing container: %s", r)
	}
}
