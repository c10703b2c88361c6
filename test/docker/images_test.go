package docker_test

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestImages(t *testing.T) {
	need(t)
	loadBusybox(t)
	// A second load of the same archive names the same image again.
	r := docker(t, "load", "-i", env.archive)
	if r.code != 0 || !strings.Contains(r.stdout, "Loaded image: busybox:latest") {
		t.Fatalf("docker load again: %s", r)
	}
	out := dockerOK(t, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
	if !strings.Contains(out, "busybox:latest ") {
		t.Fatalf("docker images:\n%s", out)
	}
	var ins []struct {
		ID       string `json:"Id"`
		RepoTags []string
		Os       string
		Config   struct{ Cmd []string }
	}
	if err := json.Unmarshal([]byte(dockerOK(t, "image", "inspect", "busybox")), &ins); err != nil || len(ins) != 1 {
		t.Fatalf("docker image inspect: %v", err)
	}
	if ins[0].Os != "linux" || !strings.HasPrefix(ins[0].ID, "sha256:") || len(ins[0].Config.Cmd) == 0 {
		t.Errorf("docker image inspect: %+v", ins[0])
	}
	dockerOK(t, "tag", "busybox", "mybox:v1")
	if out := dockerOK(t, "images", "--format", "{{.Repository}}:{{.Tag}}", "mybox"); strings.TrimSpace(out) != "mybox:v1" {
		t.Errorf("docker images mybox after docker tag: %q", out)
	}
	if out := dockerOK(t, "rmi", "mybox:v1"); !strings.Contains(out, "Untagged: mybox:v1") {
		t.Errorf("docker rmi mybox:v1: %q", out)
	}
	if r := docker(t, "image", "inspect", "mybox:v1"); r.code == 0 || !strings.Contains(r.stderr, "No such image: mybox:v1") {
		t.Errorf("inspect of a removed tag: %s", r)
	}
	// busybox is still there under its first name.
	dockerOK(t, "image", "inspect", "busybox:latest")
	if r := docker(t, "rmi", "nosuch:image"); r.code == 0 || !strings.Contains(r.stderr, "No such image: nosuch:image") {
		t.Errorf("docker rmi of a missing image: %s", r)
	}
}

func TestPullAndRmi(t *testing.T) {
	need(t)
	ref := env.regHost + "/busybox:latest"
	r := docker(t, "pull", ref)
	if r.code != 0 || !strings.Contains(r.stdout, "Downloaded newer image for "+ref) {
		t.Fatalf("docker pull: %s", r)
	}
	if r := docker(t, "pull", env.regHost+"/nosuch:latest"); r.code == 0 {
		t.Errorf("docker pull of a missing image: %s", r)
	}
	out := dockerOK(t, "rmi", ref)
	if !strings.Contains(out, "Untagged: "+ref) {
		t.Errorf("docker rmi %s: %q", ref, out)
	}
	if r := docker(t, "image", "inspect", ref); r.code == 0 {
		t.Errorf("the pulled image is still there: %s", r)
	}
}
