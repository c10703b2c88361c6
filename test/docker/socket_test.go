package docker_test

import (
	"debug/elf"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDockerSocketInContainer: `-v /var/run/docker.sock:/var/run/docker.sock` (the path the CLI
// takes for the daemon's, while DOCKER_HOST points at Skiff's) and a bind of Skiff's docker.sock
// itself give the container a socket to the engine: the docker CLI, run inside, lists its own
// container. Any other unix socket is refused with a message naming it.
func TestDockerSocketInContainer(t *testing.T) {
	need(t)
	loadBusybox(t)
	if f, err := elf.Open(env.docker); err != nil {
		t.Skipf("docker CLI %s: %v", env.docker, err)
	} else {
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				f.Close()
				t.Skipf("the docker CLI %s is linked dynamically: it cannot run in busybox", env.docker)
			}
		}
		f.Close()
	}
	bin := filepath.Dir(env.docker)
	r := docker(t, "run", "--rm", "--name", "dind", "-e", "HOME=/tmp",
		"-v", "/var/run/docker.sock:/var/run/docker.sock", "-v", bin+":/dk:ro",
		"busybox", "/dk/docker", "ps", "--format", "{{.Names}}")
	if r.code != 0 || !strings.Contains(r.stdout, "dind") {
		t.Errorf("docker ps inside a container with /var/run/docker.sock: %s", r)
	}
	r = docker(t, "run", "--rm", "--name", "dind2", "-e", "HOME=/tmp", "-e", "DOCKER_HOST=unix:///sk/docker.sock",
		"-v", filepath.Join(env.home, "docker.sock")+":/sk/docker.sock", "-v", bin+":/dk:ro",
		"busybox", "/dk/docker", "inspect", "--format", "{{.Name}}", "dind2")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "/dind2" {
		t.Errorf("docker inspect inside a container with Skiff's docker.sock: %s", r)
	}

	dir, err := os.MkdirTemp("", "sk")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	other := filepath.Join(dir, "other.sock")
	l, err := net.Listen("unix", other)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r = docker(t, "run", "--rm", "-v", other+":/run/other.sock", "busybox", "true")
	if r.code == 0 || !strings.Contains(r.stderr, "is a unix socket") {
		t.Errorf("docker run with another unix socket: %s, want a refusal naming it", r)
	}
}
