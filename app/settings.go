package app

import (
	"context"
	"runtime"
	"strconv"
	"strings"
)

// AppSettings are the user's settings, kept in a file in the engine's data dir.
type AppSettings struct {
	// DefaultCPUs and DefaultMemoryMiB size the VM of a new container that sets no --cpus or
	// --memory (the Run dialog shows them); 0: the engine's own defaults, EngineCPUs and
	// EngineMemoryMiB.
	DefaultCPUs      float64
	DefaultMemoryMiB int
	EngineCPUs       int    // read-only
	EngineMemoryMiB  int    // read-only
	DataDir          string // read-only: the engine's data dir (containers, images, volumes, this file)
	// StartAtLogin: the program serving these settings (the desktop app, or `skiff daemon`) starts
	// when the user logs in; StartAtLoginFile (read-only) is the entry written for it (a LaunchAgent
	// on macOS, an XDG autostart file elsewhere).
	StartAtLogin     bool
	StartAtLoginFile string
	// Registries are the registries logged in to here (RegistryLogin), by host; their credentials
	// are never returned. Pulls use them first, then the Docker keychain (~/.docker/config.json).
	Registries []string
}

// SettingsUpdate is what Settings.Set changes.
type SettingsUpdate struct {
	DefaultCPUs      float64 // 0: the engine's default
	DefaultMemoryMiB int     // 0: the engine's default
	StartAtLogin     bool
}

// SettingsBackend is the part of a Backend that keeps the settings (a Backend without it answers
// unavailable).
type SettingsBackend interface {
	Settings(ctx context.Context) (*AppSettings, error)
	SetSettings(ctx context.Context, u SettingsUpdate) (*AppSettings, error)
	// RegistryLogin checks the credentials against the registry, then keeps them for pulls.
	RegistryLogin(ctx context.Context, registry, username, password string) error
	RegistryLogout(ctx context.Context, registry string) error
}

// Settings is the settings service: defaults for new containers, start at login, registry logins.
type Settings struct{ *base }

func (s *Settings) backend() (SettingsBackend, error) {
	sb, ok := s.b.(SettingsBackend)
	if !ok {
		return nil, &Error{Code: CodeUnavailable, Message: "this engine keeps no settings"}
	}
	return sb, nil
}

// Get returns the settings.
func (s *Settings) Get() (*AppSettings, error) {
	sb, err := s.backend()
	if err != nil {
		return nil, err
	}
	r, err := sb.Settings(s.ctx())
	return r, toError(err)
}

// Set changes the settings (checked first: a bad value changes nothing) and returns them.
func (s *Settings) Set(u SettingsUpdate) (*AppSettings, error) {
	sb, err := s.backend()
	if err != nil {
		return nil, err
	}
	if u.DefaultCPUs != 0 {
		if n := runtime.NumCPU(); u.DefaultCPUs < 0.01 || u.DefaultCPUs > float64(n) {
			return nil, invalid("invalid default CPUs %s: the range is from 0.01 to %d, as there are %d CPUs (0: the engine's default)",
				strconv.FormatFloat(u.DefaultCPUs, 'f', -1, 64), n, n)
		}
	}
	if u.DefaultMemoryMiB != 0 && u.DefaultMemoryMiB < MinMemoryMiB {
		return nil, invalid("invalid default memory %d MiB: a container's VM needs at least %d MiB (0: the engine's default)", u.DefaultMemoryMiB, MinMemoryMiB)
	}
	r, err := sb.SetSettings(s.ctx(), u)
	return r, toError(err)
}

// RegistryLogin logs in to registry ("ghcr.io", "localhost:5000"; "docker.io" for Docker Hub) with
// username and password (or token), checked against the registry first; pulls use them from then on.
func (s *Settings) RegistryLogin(registry, username, password string) error {
	sb, err := s.backend()
	if err != nil {
		return err
	}
	registry = strings.TrimSpace(registry)
	if registry == "" || strings.Contains(registry, "://") || strings.ContainsAny(registry, "/ ") {
		return invalid("invalid registry %q: give its host, such as ghcr.io or localhost:5000", registry)
	}
	if strings.TrimSpace(username) == "" || password == "" {
		return invalid("registry login to %s: the username and the password are both needed", registry)
	}
	return toError(sb.RegistryLogin(s.ctx(), registry, username, password))
}

// RegistryLogout forgets the credentials of registry kept by RegistryLogin.
func (s *Settings) RegistryLogout(registry string) error {
	sb, err := s.backend()
	if err != nil {
		return err
	}
	return toError(sb.RegistryLogout(s.ctx(), strings.TrimSpace(registry)))
}
