package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/skiff-containers/skiff/app"
	"github.com/skiff-containers/skiff/backend/engine"
	"github.com/skiff-containers/skiff/internal/autostart"
)

var _ app.SettingsBackend = (*Backend)(nil)

// The settings file and the registry credentials, in the data dir.
const (
	settingsFile   = "settings.json"
	registriesFile = "registries.json" // mode 0600: credentials
	// autostartLabel names the login item of Skiff.
	autostartLabel = "dev.skiff.skiff"
)

// settings are the user's settings kept in <home>/settings.json, and the registry credentials of
// <home>/registries.json, which the image store's keychain reads (settings.Resolve).
type settings struct {
	home      string
	autostart []string // the command line the login item runs

	mu sync.Mutex // guards the two files and cur
	// cur is what settings.json holds.
	cur struct {
		DefaultCPUs      float64 `json:"defaultCPUs,omitempty"`
		DefaultMemoryMiB int     `json:"defaultMemoryMiB,omitempty"`
	}
}

// registryAuth is one registry's credentials in registries.json.
type registryAuth struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// openSettings reads <home>/settings.json (none: the defaults).
func openSettings(home string, autostartCmd []string) (*settings, error) {
	s := &settings{home: home, autostart: autostartCmd}
	b, err := os.ReadFile(filepath.Join(home, settingsFile))
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err == nil {
		err = json.Unmarshal(b, &s.cur)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the settings %s: %w", filepath.Join(home, settingsFile), err)
	}
	return s, nil
}

// defaults are the CPUs and memory (bytes) of a new container that sets none.
func (s *settings) defaults() (float64, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur.DefaultCPUs, int64(s.cur.DefaultMemoryMiB) << 20
}

func (s *settings) get() (*app.AppSettings, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cpus, mem := engine.VMShape(0, 0)
	out := &app.AppSettings{DefaultCPUs: s.cur.DefaultCPUs, DefaultMemoryMiB: s.cur.DefaultMemoryMiB, EngineCPUs: cpus,
		EngineMemoryMiB: mem, DataDir: s.home, StartAtLogin: autostart.Enabled(autostartLabel), Registries: []string{}}
	if out.StartAtLogin {
		out.StartAtLoginFile, _ = autostart.Path(autostartLabel)
	}
	regs, err := s.registries()
	if err != nil {
		return nil, err
	}
	for r := range regs {
		out.Registries = append(out.Registries, r)
	}
	sort.Strings(out.Registries)
	return out, nil
}

func (s *settings) set(u app.SettingsUpdate) (*app.AppSettings, error) {
	s.mu.Lock()
	next := s.cur
	next.DefaultCPUs, next.DefaultMemoryMiB = u.DefaultCPUs, u.DefaultMemoryMiB
	err := writeJSON(filepath.Join(s.home, settingsFile), next, 0o644)
	if err == nil {
		s.cur = next
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if u.StartAtLogin != autostart.Enabled(autostartLabel) {
		if u.StartAtLogin {
			_, err = autostart.Enable(autostartLabel, "Skiff", s.autostart)
		} else {
			err = autostart.Disable(autostartLabel)
		}
		if err != nil {
			return nil, fmt.Errorf("start at login: %w", err)
		}
	}
	return s.get()
}

// registries reads registries.json; s.mu is held.
func (s *settings) registries() (map[string]registryAuth, error) {
	m := map[string]registryAuth{}
	b, err := os.ReadFile(filepath.Join(s.home, registriesFile))
	if errors.Is(err, os.ErrNotExist) {
		return m, nil
	}
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the registry logins: %w", err)
	}
	return m, nil
}

// registryKey is how a registry is named in registries.json: as go-containerregistry names it
// ("index.docker.io" for docker.io), so that Resolve finds it by a pull's registry.
func registryKey(registry string) (name.Registry, error) {
	reg, err := name.NewRegistry(registry)
	if err != nil {
		return name.Registry{}, fmt.Errorf("registry %q: %v: %w", registry, err, engine.ErrInvalid)
	}
	return reg, nil
}

// login checks username and password against the registry (a token exchange, then GET /v2/)
// and keeps them; a refused login keeps nothing.
func (s *settings) login(ctx context.Context, registry, username, password string) error {
	reg, err := registryKey(registry)
	if err != nil {
		return err
	}
	auth := authn.FromConfig(authn.AuthConfig{Username: username, Password: password})
	rt, err := transport.NewWithContext(ctx, reg, auth, http.DefaultTransport, []string{reg.Scope(transport.PullScope)})
	if err != nil {
		return fmt.Errorf("logging in to %s: %w", registry, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s://%s/v2/", reg.Scheme(), reg.RegistryStr()), nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return fmt.Errorf("logging in to %s: %w", registry, err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return fmt.Errorf("logging in to %s: the registry refused the username or password (%s): %w", registry, resp.Status, engine.ErrInvalid)
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("logging in to %s: the registry answered %s", registry, resp.Status)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.registries()
	if err != nil {
		return err
	}
	m[reg.RegistryStr()] = registryAuth{Username: username, Password: password}
	return writeJSON(filepath.Join(s.home, registriesFile), m, 0o600)
}

func (s *settings) logout(registry string) error {
	reg, err := registryKey(registry)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.registries()
	if err != nil {
		return err
	}
	if _, ok := m[reg.RegistryStr()]; !ok {
		return fmt.Errorf("not logged in to %s: %w", registry, engine.ErrNotFound)
	}
	delete(m, reg.RegistryStr())
	return writeJSON(filepath.Join(s.home, registriesFile), m, 0o600)
}

// Resolve implements authn.Keychain: the credentials kept for the registry of target, else
// anonymous (the image store asks the Docker keychain next).
func (s *settings) Resolve(target authn.Resource) (authn.Authenticator, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.registries()
	if err != nil {
		return nil, err
	}
	a, ok := m[target.RegistryStr()]
	if !ok {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(authn.AuthConfig{Username: a.Username, Password: a.Password}), nil
}

// writeJSON replaces path with v as JSON, atomically, with mode perm.
func writeJSON(path string, v any, perm os.FileMode) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), perm); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// Settings implements app.SettingsBackend.
func (b *Backend) Settings(ctx context.Context) (*app.AppSettings, error) {
	if b.settings == nil {
		return nil, &app.Error{Code: app.CodeUnavailable, Message: "this engine keeps no settings"}
	}
	r, err := b.settings.get()
	return r, classify(err)
}

// SetSettings implements app.SettingsBackend.
func (b *Backend) SetSettings(ctx context.Context, u app.SettingsUpdate) (*app.AppSettings, error) {
	if b.settings == nil {
		return nil, &app.Error{Code: app.CodeUnavailable, Message: "this engine keeps no settings"}
	}
	r, err := b.settings.set(u)
	return r, classify(err)
}

// RegistryLogin implements app.SettingsBackend.
func (b *Backend) RegistryLogin(ctx context.Context, registry, username, password string) error {
	if b.settings == nil {
		return &app.Error{Code: app.CodeUnavailable, Message: "this engine keeps no settings"}
	}
	return classify(b.settings.login(ctx, registry, username, password))
}

// RegistryLogout implements app.SettingsBackend.
func (b *Backend) RegistryLogout(ctx context.Context, registry string) error {
	if b.settings == nil {
		return &app.Error{Code: app.CodeUnavailable, Message: "this engine keeps no settings"}
	}
	return classify(b.settings.logout(registry))
}
