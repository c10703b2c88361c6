package app

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
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
	CPUs        string // "1", "1.5"
	Memory      string // "512m", "1g", bytes
	Restart     string // no | on-failure[:N] | always | unless-stopped
	Platform    string // linux/amd64, linux/arm64
	Pull        string // always | missing | never
	Labels      []string
	TTY         bool
	Interactive bool
	AutoRemove  bool
	ProgressID  string // when set, progress is emitted on "progress:<ProgressID>"
}

// RunSpec is a validated RunRequest, ready for the engine.
type RunSpec struct {
	Image       string
	Name        string
	Entrypoint  *[]string
	Cmd         []string
	Env         []string
	Ports       []PortMapping
	Mounts      []Mount
	Workdir     string
	User        string
	Hostname    string
	CPUs        float64 // 0: the engine's default
	MemoryMiB   int     // 0: the engine's default
	Restart     RestartPolicy
	Platform    string
	Pull        string
	Labels      map[string]string
	TTY         bool
	Interactive bool
	AutoRemove  bool
}

// MinMemoryMiB is the least memory a container's VM can boot with.
const MinMemoryMiB = 64

var (
	nameRE     = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
	envKeyRE   = regexp.MustCompile(`^[^=\s]+$`)
	hostnameRE = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$`)
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
	if req.Workdir != "" && !path.IsAbs(req.Workdir) {
		return nil, invalid("invalid --workdir %q: the working directory must be an absolute path", req.Workdir)
	}
	s.Workdir = req.Workdir
	if req.Hostname != "" && (len(req.Hostname) > 253 || !hostnameRE.MatchString(req.Hostname)) {
		return nil, invalid("invalid --hostname %q: use letters, digits, '-' and '.'", req.Hostname)
	}
	s.Hostname = req.Hostname
	if s.CPUs, err = ParseCPUs(req.CPUs); err != nil {
		return nil, err
	}
	if s.MemoryMiB, err = ParseMemory(req.Memory); err != nil {
		return nil, err
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

// ValidateName checks a container name; the empty name (the engine picks one) is valid.
func ValidateName(name string) error {
	if name != "" && !nameRE.MatchString(name) {
		return invalid("invalid container name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-]* are allowed", name)
	}
	return nil
}

// ParsePort parses "[ip:]host:ctr[/tcp|udp]"; an IPv6 address goes in brackets: "[::1]:8080:80".
// A missing host port ("80", "127.0.0.1::80") is 0: the engine picks a free one.
func ParsePort(spec string) (PortMapping, error) {
	bad := func(why string) (PortMapping, error) {
		return PortMapping{}, invalid("invalid port mapping %q: %s (expected [ip:][hostPort:]containerPort[/tcp|udp])", spec, why)
	}
	m := PortMapping{Proto: "tcp"}
	rest := spec
	if i := strings.LastIndex(rest, "/"); i >= 0 {
		m.Proto = strings.ToLower(rest[i+1:])
		rest = rest[:i]
		if m.Proto != "tcp" && m.Proto != "udp" {
			return bad("the protocol must be tcp or udp")
		}
	}
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]")
		if end < 0 || len(rest) <= end+1 || rest[end+1] != ':' {
			return bad("unterminated IPv6 address")
		}
		m.HostIP, rest = rest[1:end], rest[end+2:]
		if ip := net.ParseIP(m.HostIP); ip == nil || ip.To4() != nil {
			return bad("not an IPv6 address")
		}
	}
	parts := strings.Split(rest, ":")
	if len(parts) == 1 && m.HostIP == "" { // container port only: the engine picks a free host port
		parts = []string{"", parts[0]}
	}
	switch {
	case len(parts) == 3 && m.HostIP == "":
		m.HostIP = parts[0]
		if net.ParseIP(m.HostIP) == nil {
			return bad(fmt.Sprintf("%q is not an IP address", m.HostIP))
		}
		parts = parts[1:]
	case len(parts) == 2:
	default:
		return bad("both a host and a container port are needed")
	}
	var err error
	if parts[0] != "" { // empty: any free port
		if m.HostPort, err = parsePortNumber(parts[0]); err != nil {
			return bad("host port: " + err.Error())
		}
	}
	if m.ContainerPort, err = parsePortNumber(parts[1]); err != nil {
		return bad("container port: " + err.Error())
	}
	return m, nil
}

func parsePortNumber(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port number (1-65535)", s)
	}
	return n, nil
}

// ParseVolume parses "/host:/ctr[:ro|rw]". The host path must be absolute and exist.
func ParseVolume(spec string) (Mount, error) {
	parts := strings.Split(spec, ":")
	var m Mount
	switch {
	case len(parts) == 3 && (parts[2] == "ro" || parts[2] == "rw"):
		m.ReadOnly = parts[2] == "ro"
	case len(parts) == 3:
		return m, invalid("invalid volume %q: unknown mode %q (expected ro or rw)", spec, parts[2])
	case len(parts) == 2:
	default:
		return m, invalid("invalid volume %q: expected /host/path:/container/path[:ro]", spec)
	}
	m.Source, m.Target = parts[0], parts[1]
	if !filepath.IsAbs(m.Source) {
		return m, invalid("invalid volume %q: the host path %q must be absolute", spec, m.Source)
	}
	if _, err := os.Stat(m.Source); err != nil {
		return m, invalid("invalid volume %q: the host path %q does not exist", spec, m.Source)
	}
	if !path.IsAbs(m.Target) {
		return m, invalid("invalid volume %q: the container path %q must be absolute", spec, m.Target)
	}
	m.Source, m.Target = filepath.Clean(m.Source), path.Clean(m.Target)
	if m.Target == "/" {
		return m, invalid("invalid volume %q: cannot mount over the container's root", spec)
	}
	return m, nil
}

// ParseMemory parses "512m", "1g", "1.5g", "65536k" or a number of bytes into MiB; "" is 0 (default).
func ParseMemory(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	bad := func() (int, error) {
		return 0, invalid("invalid --memory %q: expected a size such as 512m or 2g", s)
	}
	num := strings.ToLower(strings.TrimSpace(s))
	num = strings.TrimSuffix(num, "ib")
	num = strings.TrimSuffix(num, "b")
	mult := 1.0
	if num != "" {
		switch num[len(num)-1] {
		case 'k':
			mult = 1 << 10
		case 'm':
			mult = 1 << 20
		case 'g':
			mult = 1 << 30
		case 't':
			mult = 1 << 40
		}
		if mult != 1 {
			num = num[:len(num)-1]
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f <= 0 || f != f || f > 1<<50 {
		return bad()
	}
	mib := int(f * mult / (1 << 20))
	if mib < MinMemoryMiB {
		return 0, invalid("invalid --memory %q: a container needs at least %d MiB", s, MinMemoryMiB)
	}
	return mib, nil
}

// ParseCPUs parses "--cpus": a positive number no larger than the host's CPU count; "" is 0 (default).
func ParseCPUs(s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || f != f {
		return 0, invalid("invalid --cpus %q: expected a number such as 1 or 1.5", s)
	}
	if f <= 0 || f > float64(runtime.NumCPU()) {
		return 0, invalid("invalid --cpus %q: the range of CPUs is from 0.01 to %d", s, runtime.NumCPU())
	}
	return f, nil
}

// ParseRestart parses "no", "on-failure[:N]", "always" or "unless-stopped"; "" is "no".
func ParseRestart(s string) (RestartPolicy, error) {
	name, count, hasCount := strings.Cut(s, ":")
	p := RestartPolicy{Name: name}
	switch name {
	case "", "no":
		p.Name = "no"
	case "always", "unless-stopped":
	case "on-failure":
		if hasCount {
			n, err := strconv.Atoi(count)
			if err != nil || n < 0 {
				return p, invalid("invalid --restart %q: the retry count must be a non-negative number", s)
			}
			p.MaxRetries = n
		}
		return p, nil
	default:
		return p, invalid("invalid --restart %q: expected no, on-failure[:N], always or unless-stopped", s)
	}
	if hasCount {
		return p, invalid("invalid --restart %q: only on-failure takes a retry count", s)
	}
	return p, nil
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
	if s.Restart.Name != "" {
		r.Restart = s.Restart.Name
		if s.Restart.Name == "on-failure" && s.Restart.MaxRetries > 0 {
			r.Restart += ":" + strconv.Itoa(s.Restart.MaxRetries)
		}
	}
	for k, v := range s.Labels {
		r.Labels = append(r.Labels, k+"="+v)
	}
	return r
}
