package app

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/skiff-containers/skiff/backend/engine"
)

// RunRequest is what the run dialog and `skiff run`/`create` send: the CLI's flags as strings, so
// both are validated by ParseRunRequest alone.
type RunRequest struct {
	Image       string
	Name        string
	Entrypoint  *[]string // nil: the image's; empty: none
	Cmd         []string
	Env         []string // KEY=VALUE
	EnvFiles    []string // paths on the engine's host
	Ports       []string // [ip:]host:ctr[/tcp|udp]
	Volumes     []string // /host:/ctr[:ro|rw]
	Workdir     string
	User        string
	Hostname    string
	CPUs        string   // "1", "1.5"
	Memory      string   // "512m", "1g", bytes
	StorageOpt  []string // "size=20G": the container's writable disk
	Restart     string   // no | on-failure[:N] | always | unless-stopped
	Platform    string   // linux/amd64, linux/arm64
	Pull        string   // always | missing | never
	Labels      []string
	TTY         bool
	Interactive bool
	AutoRemove  bool
	ProgressID  string // when set, progress is emitted on "progress:<ProgressID>"
	// The health check (--health-cmd, …; durations such as "30s"); all empty: the image's.
	HealthCmd           string
	HealthInterval      string
	HealthTimeout       string
	HealthStartPeriod   string
	HealthStartInterval string
	HealthRetries       int
	NoHealthcheck       bool
	// Network is the network to join ("" or "bridge": the default one; "none": no network);
	// NetworkAliases are the container's extra DNS names on it (not on the default network).
	Network        string
	NetworkAliases []string
}

// RunSpec is a validated RunRequest, ready for the engine.
type RunSpec struct {
	Image          string
	Name           string
	Entrypoint     *[]string
	Cmd            []string
	Env            []string
	Ports          []PortMapping
	Mounts         []Mount
	Workdir        string
	User           string
	Hostname       string
	CPUs           float64 // 0: the engine's default
	MemoryMiB      int     // 0: the engine's default
	StorageSize    int64   // bytes of the writable disk; 0: the engine's default
	Restart        RestartPolicy
	Platform       string
	Pull           string
	Labels         map[string]string
	TTY            bool
	Interactive    bool
	AutoRemove     bool
	Network        string
	NetworkAliases []string
	Health         *HealthCheck // nil: the image's
}

// MinMemoryMiB is the least memory a container's VM can boot with.
const MinMemoryMiB = engine.MinMemory >> 20

var (
	envKeyRE   = regexp.MustCompile(`^[^=\s]+$`)
	platformRE = regexp.MustCompile(`^linux/[a-z0-9]+(/[a-z0-9]+)?$`)
)

// ParseRunRequest validates a RunRequest and resolves it into a RunSpec. Every problem is an
// *Error with CodeInvalid naming the flag and the value that was wrong.
func ParseRunRequest(req RunRequest) (*RunSpec, error) {
	s := &RunSpec{
		Image: strings.TrimSpace(req.Image), Entrypoint: req.Entrypoint, Cmd: req.Cmd,
		User: req.User, TTY: req.TTY, Interactive: req.Interactive, AutoRemove: req.AutoRemove,
	}
	if s.Image == "" {
		return nil, invalid("an image is required")
	}
	if strings.ContainsAny(s.Image, " \t\n") {
		return nil, invalid("invalid image reference %q: contains white space", req.Image)
	}
	if err := ValidateName(req.Name); err != nil {
		return nil, err
	}
	s.Name = req.Name
	var err error
	if s.Env, err = parseEnv(req.Env, req.EnvFiles); err != nil {
		return nil, err
	}
	for _, p := range req.Ports {
		m, err := ParsePort(p)
		if err != nil {
			return nil, err
		}
		s.Ports = append(s.Ports, m)
	}
	for _, v := range req.Volumes {
		m, err := ParseVolume(v)
		if err != nil {
			return nil, err
		}
		s.Mounts = append(s.Mounts, m)
	}
	if s.Health, err = parseHealth(req); err != nil {
		return nil, err
	}
	if req.Workdir != "" && !path.IsAbs(req.Workdir) {
		return nil, invalid("invalid --workdir %q: the working directory must be an absolute path", req.Workdir)
	}
	s.Workdir = req.Workdir
	if req.Hostname != "" && engine.ValidHostname(req.Hostname) != nil {
		return nil, invalid("invalid --hostname %q: use letters, digits, '-' and '.'", req.Hostname)
	}
	s.Hostname = req.Hostname
	if s.CPUs, err = ParseCPUs(req.CPUs); err != nil {
		return nil, err
	}
	if s.MemoryMiB, err = ParseMemory(req.Memory); err != nil {
		return nil, err
	}
	if s.StorageSize, err = engine.ParseStorageOpt(req.StorageOpt); err != nil {
		return nil, invalidFrom("--storage-opt", err)
	}
	if s.Restart, err = ParseRestart(req.Restart); err != nil {
		return nil, err
	}
	if req.AutoRemove && s.Restart.Name != "no" {
		return nil, invalid("conflicting options: --restart %s and --rm", req.Restart)
	}
	if req.Platform != "" && !platformRE.MatchString(req.Platform) {
		return nil, invalid("invalid --platform %q: expected linux/<arch>, e.g. linux/arm64", req.Platform)
	}
	s.Platform = req.Platform
	switch req.Pull {
	case "", "always", "missing", "never":
		s.Pull = req.Pull
	default:
		return nil, invalid("invalid --pull %q: expected always, missing or never", req.Pull)
	}
	if len(req.NetworkAliases) > 0 && (req.Network == "" || req.Network == engine.DefaultNetwork || req.Network == engine.NetworkNone) {
		return nil, invalid("invalid --network-alias: aliases are for user-defined networks (give --network)")
	}
	for _, a := range req.NetworkAliases {
		if err := engine.ValidAlias(a); err != nil {
			return nil, invalid("invalid --network-alias %q: want letters, digits, '_', '.' and '-'", a)
		}
	}
	if req.Network == "host" {
		return nil, invalid("invalid --network host: a container's VM cannot share the host's network")
	}
	s.Network, s.NetworkAliases = req.Network, req.NetworkAliases
	if len(req.Labels) > 0 {
		s.Labels = map[string]string{}
		for _, l := range req.Labels {
			k, v, _ := strings.Cut(l, "=")
			if k == "" {
				return nil, invalid("invalid label %q: expected key=value", l)
			}
			s.Labels[k] = v
		}
	}
	return s, nil
}

// The flag parsers below are the engine's (backend/engine/parse.go holds the one copy of each
// rule); these wrappers turn the engine's errors into CodeInvalid errors worded for the CLI and the
// run dialog, whose field matching (frontend/src/lib/fields.ts) relies on the "invalid <flag>"
// prefixes, and convert the engine's types to app's.

// invalidFrom rewords an engine parser's error as "invalid <what> "<value>": <why>".
func invalidFrom(what string, err error) error {
	var pe *engine.ParseError
	if errors.As(err, &pe) {
		return invalid("invalid %s %q: %s", what, pe.Value, pe.Why)
	}
	return invalid("invalid %s: %v", what, err)
}

// ValidateName checks a container name; the empty name (the engine picks one) is valid.
func ValidateName(name string) error {
	if name == "" {
		return nil
	}
	if err := engine.ValidName(name); err != nil {
		return invalidFrom("container name", err)
	}
	return nil
}

// ParsePort parses "[ip:][hostPort:]containerPort[/tcp|udp]" (engine.ParsePort); an IPv6 address
// goes in brackets: "[::1]:8080:80". A missing or 0 host port is 0: the engine picks a free one.
func ParsePort(spec string) (PortMapping, error) {
	p, err := engine.ParsePort(spec)
	if err != nil {
		return PortMapping{}, invalidFrom("port mapping", err)
	}
	return portFromEngine(p), nil
}

func portFromEngine(p engine.PortMapping) PortMapping {
	return PortMapping{HostIP: p.HostIP, HostPort: p.HostPort, ContainerPort: p.ContainerPort, Proto: p.Proto}
}

// ParseVolume parses "/host:/ctr[:ro|rw]", "name:/ctr[:ro|rw]" (a named volume) or "/ctr" (an
// anonymous volume) (engine.ParseVolume). A host path must be absolute and, so that the run dialog
// can point at the field before anything is pulled, exist.
func ParseVolume(spec string) (Mount, error) {
	em, err := engine.ParseVolume(spec)
	if err != nil {
		return Mount{}, invalidFrom("volume", err)
	}
	m := mountFromEngine(em)
	if m.Type == engine.MountVolume {
		return m, nil
	}
	if _, err := os.Stat(m.Source); err != nil {
		return Mount{}, invalid("invalid volume %q: the host path %q does not exist", spec, m.Source)
	}
	return m, nil
}

func mountFromEngine(m engine.Mount) Mount {
	out := Mount{Type: m.Type, Name: m.Name, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly}
	if out.Type == engine.MountBind {
		out.Type = ""
	}
	return out
}

// ParseMemory parses "512m", "1g", "1.5g", "65536k" or a number of bytes (engine.ParseMemory) into
// MiB, rounded down; "" is 0 (the engine's default).
func ParseMemory(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := engine.ParseMemory(s)
	if err != nil {
		return 0, invalidFrom("--memory", err)
	}
	return int(n >> 20), nil
}

// ParseCPUs parses "--cpus" (engine.ParseCPUs): 0.01 to the host's CPU count; "" is 0 (default).
func ParseCPUs(s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	f, err := engine.ParseCPUs(s)
	if err != nil {
		return 0, invalidFrom("--cpus", err)
	}
	return f, nil
}

// ParseRestart parses "no", "on-failure[:N]", "always" or "unless-stopped"; "" is "no".
func ParseRestart(s string) (RestartPolicy, error) {
	p, err := engine.ParseRestartPolicy(s)
	if err != nil {
		return RestartPolicy{}, invalidFrom("--restart", err)
	}
	return restartFromEngine(p), nil
}

func restartFromEngine(p engine.RestartPolicy) RestartPolicy {
	return RestartPolicy{Name: p.Name, MaxRetries: p.MaximumRetryCount}
}

// parseEnv merges the env files (in order) and then the -e values; a later key wins.
func parseEnv(env, files []string) ([]string, error) {
	var all []string
	for _, f := range files {
		vars, err := readEnvFile(f)
		if err != nil {
			return nil, err
		}
		all = append(all, vars...)
	}
	for _, e := range env {
		k, _, ok := strings.Cut(e, "=")
		if !ok || !envKeyRE.MatchString(k) {
			return nil, invalid("invalid environment variable %q: expected KEY=VALUE", e)
		}
		all = append(all, e)
	}
	return dedupEnv(all), nil
}

func readEnvFile(name string) ([]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, invalid("reading env file: %v", err)
	}
	defer f.Close()
	var vars []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !envKeyRE.MatchString(k) {
			return nil, invalid("env file %s line %d: invalid variable name %q", name, n, k)
		}
		if !ok {
			val, set := os.LookupEnv(k)
			if !set {
				continue
			}
			v = val
		}
		vars = append(vars, k+"="+v)
	}
	if err := sc.Err(); err != nil {
		return nil, invalid("reading env file %s: %v", name, err)
	}
	return vars, nil
}

func dedupEnv(env []string) []string {
	last := map[string]int{}
	for i, e := range env {
		k, _, _ := strings.Cut(e, "=")
		last[k] = i
	}
	var out []string
	for i, e := range env {
		k, _, _ := strings.Cut(e, "=")
		if last[k] == i {
			out = append(out, e)
		}
	}
	return out
}

// Request turns a RunSpec back into the RunRequest that ParseRunRequest resolves to it (env files
// already merged into Env), so that a spec can cross the bridge.
func (s *RunSpec) Request() RunRequest {
	r := RunRequest{
		Image: s.Image, Name: s.Name, Entrypoint: s.Entrypoint, Cmd: s.Cmd, Env: s.Env, Workdir: s.Workdir,
		User: s.User, Hostname: s.Hostname, Platform: s.Platform, Pull: s.Pull,
		TTY: s.TTY, Interactive: s.Interactive, AutoRemove: s.AutoRemove,
		Network: s.Network, NetworkAliases: s.NetworkAliases,
	}
	for _, p := range s.Ports {
		host := ""
		switch {
		case strings.Contains(p.HostIP, ":"):
			host = "[" + p.HostIP + "]:"
		case p.HostIP != "":
			host = p.HostIP + ":"
		}
		hp := ""
		if p.HostPort != 0 {
			hp = strconv.Itoa(p.HostPort)
		}
		if host != "" || hp != "" {
			host += hp + ":"
		}
		r.Ports = append(r.Ports, fmt.Sprintf("%s%d/%s", host, p.ContainerPort, p.Proto))
	}
	for _, m := range s.Mounts {
		v := m.Source + ":" + m.Target
		switch {
		case m.Type == engine.MountVolume && m.Name == "":
			v = m.Target
		case m.Type == engine.MountVolume:
			v = m.Name + ":" + m.Target
		}
		if m.ReadOnly {
			v += ":ro"
		}
		r.Volumes = append(r.Volumes, v)
	}
	if s.CPUs != 0 {
		r.CPUs = strconv.FormatFloat(s.CPUs, 'f', -1, 64)
	}
	if s.MemoryMiB != 0 {
		r.Memory = strconv.Itoa(s.MemoryMiB) + "m"
	}
	if s.StorageSize != 0 {
		r.StorageOpt = []string{"size=" + strconv.FormatInt(s.StorageSize, 10)}
	}
	if s.Restart.Name != "" {
		r.Restart = s.Restart.Name
		if s.Restart.Name == "on-failure" && s.Restart.MaxRetries > 0 {
			r.Restart += ":" + strconv.Itoa(s.Restart.MaxRetries)
		}
	}
	for k, v := range s.Labels {
		r.Labels = append(r.Labels, k+"="+v)
	}
	if h := s.Health; h != nil {
		switch {
		case len(h.Test) == 1 && h.Test[0] == "NONE":
			r.NoHealthcheck = true
		case len(h.Test) == 2 && h.Test[0] == "CMD-SHELL":
			r.HealthCmd = h.Test[1]
		}
		for _, d := range []struct {
			v   time.Duration
			dst *string
		}{{h.Interval, &r.HealthInterval}, {h.Timeout, &r.HealthTimeout}, {h.StartPeriod, &r.HealthStartPeriod}, {h.StartInterval, &r.HealthStartInterval}} {
			if d.v != 0 {
				*d.dst = d.v.String()
			}
		}
		r.HealthRetries = h.Retries
	}
	return r
}
