package docker_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDockerContext(t *testing.T) {
	need(t)
	cfg := t.TempDir()
	// A config the user already has: its keys stay.
	if err := os.WriteFile(filepath.Join(cfg, "config.json"), []byte(`{"detachKeys":"ctrl-x,x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	skiffEnv := []string{"SKIFF_HOME=" + env.home, "DOCKER_CONFIG=" + cfg}
	dockerEnv := []string{"DOCKER_CONFIG=" + cfg, "DOCKER_HOST=", "DOCKER_CONTEXT="}
	if r := runCmd(t, "", env.skiff, skiffEnv, "docker-context"); r.code != 0 || !strings.Contains(r.stdout, "unix://"+filepath.Join(env.home, "docker.sock")) {
		t.Fatalf("skiff docker-context: %s", r)
	}
	ls := runCmd(t, "", env.docker, dockerEnv, "context", "ls", "--format", "{{.Name}} {{.Current}}")
	if ls.code != 0 || !strings.Contains(ls.stdout, "skiff false") || !strings.Contains(ls.stdout, "default true") {
		t.Errorf("docker context ls after skiff docker-context: %s", ls)
	}
	v := runCmd(t, "", env.docker, dockerEnv, "--context", "skiff", "version", "--format", "{{.Server.Platform.Name}}")
	if v.code != 0 || strings.TrimSpace(v.stdout) != "Skiff" {
		t.Errorf("docker --context skiff version: %s", v)
	}
	// --use makes it current; running it again updates, and keeps the user's keys.
	if r := runCmd(t, "", env.skiff, skiffEnv, "docker-context", "--use"); r.code != 0 {
		t.Fatalf("skiff docker-context --use: %s", r)
	}
	v = runCmd(t, "", env.docker, dockerEnv, "version", "--format", "{{.Server.Platform.Name}}")
	if v.code != 0 || strings.TrimSpace(v.stdout) != "Skiff" {
		t.Errorf("docker version with the skiff context current: %s", v)
	}
	b, _ := os.ReadFile(filepath.Join(cfg, "config.json"))
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || m["detachKeys"] != "ctrl-x,x" || m["currentContext"] != "skiff" {
		t.Errorf("config.json after --use: %s (%v)", b, err)
	}
	if r := runCmd(t, "", env.skiff, skiffEnv, "docker-context", "--name", "default"); r.code == 0 {
		t.Errorf("skiff docker-context --name default: %s", r)
	}
	if r := skiff(t, "system", "info"); !strings.Contains(r.stdout, "DOCKER_HOST=unix://"+filepath.Join(env.home, "docker.sock")) {
		t.Errorf("skiff system info: %s", r)
	}
}
