package docker_test

import (
	"strings"
	"testing"
)

// docker push sends a tagged image to the registry, which docker pull gets back after docker rmi;
// pushing a missing image fails with Docker's message; docker login against a registry without auth
// succeeds.
func TestPush(t *testing.T) {
	need(t)
	loadBusybox(t)
	ref := env.regHost + "/pushed:1"
	dockerOK(t, "tag", "busybox", ref)
	id := strings.TrimSpace(dockerOK(t, "image", "inspect", "--format", "{{.Id}}", ref))
	r := docker(t, "push", ref)
	if r.code != 0 || !strings.Contains(r.stdout, "The push refers to repository ["+env.regHost+"/pushed]") ||
		!strings.Contains(r.stdout, "1: digest: sha256:") {
		t.Fatalf("docker push: %s", r)
	}
	dockerOK(t, "rmi", ref)
	if r := docker(t, "pull", ref); r.code != 0 {
		t.Fatalf("docker pull of the pushed image: %s", r)
	}
	if got := strings.TrimSpace(dockerOK(t, "image", "inspect", "--format", "{{.Id}}", ref)); got != id {
		t.Errorf("pulled back %s, pushed %s", got, id)
	}
	dockerOK(t, "rmi", ref)

	missing := env.regHost + "/missing:1"
	if r := docker(t, "push", missing); r.code == 0 ||
		!strings.Contains(r.stderr, "An image does not exist locally with the tag: "+env.regHost+"/missing") {
		t.Errorf("docker push of a missing image: %s", r)
	}

	r = dockerIn(t, "anything\n", "login", "-u", "skiff", "--password-stdin", env.regHost)
	if r.code != 0 || !strings.Contains(r.stdout, "Login Succeeded") {
		t.Errorf("docker login: %s", r)
	}
	docker(t, "logout", env.regHost)
}
