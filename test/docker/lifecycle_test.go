package docker_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestLifecycle(t *testing.T) {
	need(t)
	loadBusybox(t)
	dockerOK(t, "run", "-d", "--name", "lc", "busybox", "sh", "-c",
		`trap "echo got term; exit 7" TERM; echo started; while true; do sleep 0.2; done`)
	defer docker(t, "rm", "-f", "lc")
	status := func() string {
		return strings.TrimSpace(dockerOK(t, "ps", "-a", "--filter", "name=^lc$", "--format", "{{.Status}}"))
	}
	dockerOK(t, "pause", "lc")
	if s := status(); !strings.HasSuffix(s, "(Paused)") {
		t.Errorf("after pause: %q", s)
	}
	dockerOK(t, "unpause", "lc")
	if s := status(); !strings.HasPrefix(s, "Up ") || strings.Contains(s, "Paused") {
		t.Errorf("after unpause: %q", s)
	}
	dockerOK(t, "restart", "-t", "5", "lc")
	if s := status(); !strings.HasPrefix(s, "Up ") {
		t.Errorf("after restart: %q", s)
	}
	// The trap needs the shell to be running: wait for the second "started".
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(dockerOK(t, "logs", "lc"), "started") < 2 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	dockerOK(t, "kill", "-s", "TERM", "lc")
	if out := strings.TrimSpace(dockerOK(t, "wait", "lc")); out != "7" {
		t.Errorf("docker wait after kill -s TERM printed %q, want 7", out)
	}
	if out := dockerOK(t, "logs", "lc"); out != "started\ngot term\nstarted\ngot term\n" {
		t.Errorf("docker logs after restart and kill: %q", out)
	}
	if r := docker(t, "kill", "lc"); r.code == 0 || !strings.Contains(r.stderr, "is not running") {
		t.Errorf("kill of a stopped container: %s", r)
	}
	dockerOK(t, "start", "lc")
	if s := status(); !strings.HasPrefix(s, "Up ") {
		t.Errorf("after start: %q", s)
	}
	if r := docker(t, "rm", "lc"); r.code == 0 || !strings.Contains(r.stderr, "stop the container before removing or force remove") {
		t.Errorf("rm of a running container: %s", r)
	}
	dockerOK(t, "stop", "lc")
	if out := strings.TrimSpace(dockerOK(t, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "lc")); out != "exited 7" {
		t.Errorf("inspect after stop: %q", out)
	}
}

func TestTTY(t *testing.T) {
	need(t)
	loadBusybox(t)
	// With a TTY the output is the terminal's, raw (no stdcopy framing): CRLF line ends.
	r := docker(t, "run", "--rm", "-t", "busybox", "sh", "-c", "echo tty; tty")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "tty\r\n/dev/pts/") {
		t.Errorf("docker run -t: %s", r)
	}
	id := strings.TrimSpace(dockerOK(t, "run", "-d", "-t", "busybox", "sh", "-c", "echo in tty; sleep 600"))
	defer docker(t, "rm", "-f", id)
	deadline := time.Now().Add(30 * time.Second)
	var logs string
	for time.Now().Before(deadline) {
		if logs = dockerOK(t, "logs", id); logs != "" {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if logs != "in tty\r\n" {
		t.Errorf("docker logs of a TTY container: %q", logs)
	}
	if r := docker(t, "exec", "-t", id, "tty"); r.code != 0 || !strings.HasPrefix(r.stdout, "/dev/pts/") {
		t.Errorf("docker exec -t: %s", r)
	}
}

func TestLogsFollowAndSince(t *testing.T) {
	need(t)
	loadBusybox(t)
	id := strings.TrimSpace(dockerOK(t, "run", "-d", "busybox", "sh", "-c",
		"echo one; sleep 2; echo two >&2; sleep 1; echo three"))
	defer docker(t, "rm", "-f", id)
	// -f returns once the container has exited, with every line on its stream.
	r := docker(t, "logs", "-f", id)
	if r.code != 0 || r.stdout != "one\nthree\n" || r.stderr != "two\n" {
		t.Errorf("docker logs -f: %s", r)
	}
	if out := strings.TrimSpace(dockerOK(t, "wait", id)); out != "0" {
		t.Errorf("docker wait: %q", out)
	}
	// --since a time after the first line: only the later ones.
	var first time.Time
	for _, l := range strings.Split(strings.TrimSpace(dockerOK(t, "logs", "-t", id)), "\n") {
		ts, text, _ := strings.Cut(l, " ")
		if text == "one" {
			first, _ = time.Parse(time.RFC3339Nano, ts)
		}
	}
	if first.IsZero() {
		t.Fatal("no timestamp for the first line")
	}
	since := first.Add(500 * time.Millisecond).Format(time.RFC3339Nano)
	r = docker(t, "logs", "--since", since, id)
	if r.code != 0 || r.stdout != "three\n" || r.stderr != "two\n" {
		t.Errorf("docker logs --since %s: %s", since, r)
	}
	r = docker(t, "logs", "--until", since, id)
	if r.code != 0 || r.stdout != "one\n" || r.stderr != "" {
		t.Errorf("docker logs --until %s: %s", since, r)
	}
}

func TestStats(t *testing.T) {
	need(t)
	loadBusybox(t)
	dockerOK(t, "run", "-d", "--name", "busy", "--cpus", "1", "busybox", "sh", "-c", "while :; do :; done")
	defer docker(t, "rm", "-f", "busy")
	out := strings.TrimSpace(dockerOK(t, "stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}", "busy"))
	f := strings.Fields(out)
	if len(f) < 4 || f[0] != "busy" || f[1] == "0.00%" || !strings.HasSuffix(f[1], "%") || strings.HasPrefix(f[2], "0B") || f[len(f)-1] == "0" {
		t.Errorf("docker stats --no-stream of a busy loop: %q", out)
	}
	var pct float64
	fmt.Sscanf(f[1], "%f%%", &pct)
	if pct <= 1 || pct > 110 { // about 100 on an idle host; less when other VMs compete under TCG
		t.Errorf("a busy loop on one vCPU shows %v%% CPU, want about 100", pct)
	}
}
