package docker_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A health check from the run flags turns unhealthy, then healthy, and shows in inspect, ps and
// the events.
func TestHealthcheck(t *testing.T) {
	need(t)
	loadBusybox(t)
	cmd := exec.Command(env.docker, "events", "--filter", "container=hc", "--filter", "event=health_status", "--format", "{{.Action}}")
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+filepath.Join(env.home, "docker.sock"), "DOCKER_CONFIG="+env.config)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	time.Sleep(time.Second)
	dockerOK(t, "run", "-d", "--name", "hc", "--health-cmd", "echo probe; test -f /tmp/ok", "--health-interval", "1s",
		"--health-retries", "2", "--health-timeout", "5s", "busybox", "sleep", "600")
	defer docker(t, "rm", "-f", "hc")
	status := func() string {
		return strings.TrimSpace(dockerOK(t, "inspect", "--format", "{{.State.Health.Status}}", "hc"))
	}
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for status() != want {
			if time.Now().After(deadline) {
				t.Fatalf("health %q after 90 s, want %q", status(), want)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	waitFor("unhealthy")
	if out := dockerOK(t, "inspect", "--format", "{{(index .State.Health.Log 0).ExitCode}} {{(index .State.Health.Log 0).Output}}", "hc"); out != "1 probe\n\n" {
		t.Errorf("health log: %q", out)
	}
	if out := dockerOK(t, "inspect", "--format", "{{.Config.Healthcheck.Test}} {{.Config.Healthcheck.Retries}}", "hc"); strings.TrimSpace(out) != "[CMD-SHELL echo probe; test -f /tmp/ok] 2" {
		t.Errorf("Config.Healthcheck: %q", out)
	}
	dockerOK(t, "exec", "hc", "touch", "/tmp/ok")
	waitFor("healthy")
	if out := dockerOK(t, "ps", "--filter", "name=hc", "--filter", "health=healthy", "--format", "{{.Status}}"); !strings.HasSuffix(strings.TrimSpace(out), "(healthy)") {
		t.Errorf("docker ps status %q, want (healthy)", out)
	}
	var got []string
	timeout := time.After(30 * time.Second)
	for len(got) < 2 {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("docker events ended; got %q", got)
			}
			got = append(got, l)
		case <-timeout:
			t.Fatalf("health events %q, want two", got)
		}
	}
	if got[0] != "health_status: unhealthy" || got[1] != "health_status: healthy" {
		t.Errorf("health events %q", got)
	}
}
