package daemon_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiff-containers/skiff/app"
	"github.com/skiff-containers/skiff/app/client"
)

// checkSettings drives Settings over the real daemon (TestServicesOverRealEngine): defaults for new
// containers kept in <home>/settings.json, start at login as an XDG autostart entry, and a registry
// login checked against the registry and kept (0600) for pulls. Bad values change nothing. It
// leaves the defaults at 1 CPU and 256 MiB for the containers run after it.
func checkSettings(t *testing.T, ctx context.Context, c *client.Client, home, registry, xdg string) {
	t.Helper()
	s, err := c.Settings.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.DataDir != home || s.DefaultCPUs != 0 || s.EngineMemoryMiB != 512 || s.EngineCPUs < 1 || s.StartAtLogin || len(s.Registries) != 0 {
		t.Errorf("the first settings: %+v", s)
	}
	s, err = c.Settings.Set(ctx, app.SettingsUpdate{DefaultCPUs: 1, DefaultMemoryMiB: 256, StartAtLogin: true})
	if err != nil {
		t.Fatal(err)
	}
	entry := filepath.Join(xdg, "autostart", "dev.skiff.skiff.desktop")
	if s.DefaultCPUs != 1 || s.DefaultMemoryMiB != 256 || !s.StartAtLogin || s.StartAtLoginFile != entry {
		t.Errorf("after Set: %+v", s)
	}
	exe, _ := os.Executable()
	if b, err := os.ReadFile(entry); err != nil || !strings.Contains(string(b), "Exec="+exe+" daemon\n") {
		t.Errorf("the autostart entry: %q %v", b, err)
	}
	var file map[string]any
	if b, err := os.ReadFile(filepath.Join(home, "settings.json")); err != nil || json.Unmarshal(b, &file) != nil ||
		file["defaultCPUs"] != 1.0 || file["defaultMemoryMiB"] != 256.0 {
		t.Errorf("settings.json: %s %v", b, err)
	}
	for _, bad := range []app.SettingsUpdate{{DefaultMemoryMiB: 10}, {DefaultCPUs: 1e6}, {DefaultCPUs: -1}} {
		if _, err := c.Settings.Set(ctx, bad); app.CodeOf(err) != app.CodeInvalid {
			t.Errorf("Set(%+v): %v", bad, err)
		}
	}
	if s, err := c.Settings.Get(ctx); err != nil || s.DefaultMemoryMiB != 256 || !s.StartAtLogin {
		t.Errorf("after refused changes: %+v %v", s, err)
	}
	if s, err := c.Settings.Set(ctx, app.SettingsUpdate{DefaultCPUs: 1, DefaultMemoryMiB: 256}); err != nil || s.StartAtLogin {
		t.Errorf("start at login off: %+v %v", s, err)
	}
	if _, err := os.Stat(entry); !os.IsNotExist(err) {
		t.Errorf("the autostart entry after turning it off: %v", err)
	}

	// Registry logins: a registry that does not answer keeps nothing; one that does is kept.
	if err := c.Settings.RegistryLogin(ctx, "127.0.0.1:1", "me", "pw"); err == nil {
		t.Error("a login to a registry that does not answer succeeded")
	}
	if err := c.Settings.RegistryLogin(ctx, "https://"+registry, "me", "pw"); app.CodeOf(err) != app.CodeInvalid {
		t.Errorf("a login to a URL, not a host: %v", err)
	}
	if err := c.Settings.RegistryLogin(ctx, registry, "me", "pw"); err != nil {
		t.Fatal(err)
	}
	if s, err := c.Settings.Get(ctx); err != nil || len(s.Registries) != 1 || s.Registries[0] != registry {
		t.Errorf("registries after login: %+v %v", s, err)
	}
	fi, err := os.Stat(filepath.Join(home, "registries.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("registries.json: %v %v", fi, err)
	}
	if b, _ := os.ReadFile(filepath.Join(home, "registries.json")); strings.Contains(string(b), "127.0.0.1:1") {
		t.Errorf("the refused login was kept: %s", b)
	}
	// A pull from it goes on working with the credentials given (this registry takes any).
	if _, err := c.Images.Pull(ctx, registry+"/busybox:latest", "", ""); err != nil {
		t.Errorf("pull after login: %v", err)
	}
	if err := c.Settings.RegistryLogout(ctx, registry); err != nil {
		t.Error(err)
	}
	if err := c.Settings.RegistryLogout(ctx, registry); app.CodeOf(err) != app.CodeNotFound {
		t.Errorf("logout twice: %v", err)
	}
}
