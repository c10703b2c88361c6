package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDockerContext: the function the CLI and the menu-bar item share writes
// the context where the Docker CLI reads it and, with use, makes it current
// keeping the rest of config.json.
func TestDockerContext(t *testing.T) {
	cfg := t.TempDir()
	t.Setenv("DOCKER_CONFIG", cfg)
	os.WriteFile(filepath.Join(cfg, "config.json"), []byte(`{"auths":{"r.example":{}},"currentContext":"default"}`), 0o600)
	home := t.TempDir()
	msg, err := DockerContext(home, "skiff", false)
	if err != nil || !strings.Contains(msg, "unix://"+filepath.Join(home, "docker.sock")) || !strings.Contains(msg, "docker context use skiff") {
		t.Fatalf("%q %v", msg, err)
	}
	sum := sha256.Sum256([]byte("skiff"))
	meta, err := os.ReadFile(filepath.Join(cfg, "contexts", "meta", hex.EncodeToString(sum[:]), "meta.json"))
	if err != nil || !strings.Contains(string(meta), `"Host":"unix://`+filepath.Join(home, "docker.sock")) {
		t.Fatalf("meta.json: %s %v", meta, err)
	}
	current := func() map[string]any {
		var m map[string]any
		b, _ := os.ReadFile(filepath.Join(cfg, "config.json"))
		json.Unmarshal(b, &m)
		return m
	}
	if c := current(); c["currentContext"] != "default" {
		t.Errorf("without use the current context changed: %v", c)
	}
	if msg, err := DockerContext(home, "skiff", true); err != nil || !strings.Contains(msg, `Current Docker context is now "skiff"`) {
		t.Fatalf("%q %v", msg, err)
	}
	if c := current(); c["currentContext"] != "skiff" || c["auths"] == nil {
		t.Errorf("config.json after use: %v", c)
	}
	if _, err := DockerContext(home, "default", true); err == nil {
		t.Error("the name default was accepted")
	}
}
