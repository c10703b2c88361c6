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

func TestEvents(t *testing.T) {
	need(t)
	loadBusybox(t)
	cmd := exec.Command(env.docker, "events", "--filter", "container=evt", "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+filepath.Join(env.home, "docker.sock"), "DOCKER_CONFIG="+env.config)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	time.Sleep(time.Second) // the subscription is made once the CLI has connected
	if r := docker(t, "run", "--rm", "--name", "evt", "busybox", "true"); r.code != 0 {
		t.Fatalf("docker run: %s", r)
	}
	var got []string
	timeout := time.After(60 * time.Second)
	for len(got) == 0 || got[len(got)-1] != "container destroy evt" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("docker events ended; got %q", got)
			}
			got = append(got, l)
		case <-timeout:
			t.Fatalf("no destroy event within 60 s; got %q", got)
		}
	}
	joined := strings.Join(got, "\n")
	for _, want := range []string{"container create evt", "container start evt", "container die evt"} {
		if !strings.Contains(joined, want) {
			t.Errorf("docker events lacks %q:\n%s", want, joined)
		}
	}
}
