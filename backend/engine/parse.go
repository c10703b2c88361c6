package engine

import (
	"fmt"
	"math"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
)

// ParsePort parses Docker's -p syntax: [ip:][hostPort:]containerPort[/tcp|/udp]. "8080:80",
// "127.0.0.1:8080:80/tcp", "80" (a free host port), "127.0.0.1::80", "[::1]:8080:80".
func ParsePort(s string) (PortMapping, error) {
	bad := func(why string) (PortMapping, error) {
		return PortMapping{}, fmt.Errorf("port mapping %q: %s (want [ip:]hostPort:containerPort[/tcp|/udp]): %w", s, why, ErrInvalid)
	}
	m := PortMapping{Proto: "tcp"}
	rest := s
	if i := strings.LastIndex(rest, "/"); i >= 0 {
		m.Proto = strings.ToLower(rest[i+1:])
		rest = rest[:i]
		if m.Proto != "tcp" && m.Proto != "udp" {
			return bad(fmt.Sprintf("unknown protocol %q", m.Proto))
		}
	}
	if rest == "" {
		return bad("empty")
	}
	// An IPv6 address is bracketed.
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]")
		if end < 0 || len(rest) <= end+1 || rest[end+1] != ':' {
			return bad("malformed [ipv6] address")
		}
		m.HostIP = rest[1:end]
		rest = rest[end+2:]
		parts := strings.Split(rest, ":")
		if len(parts) != 2 {
			return bad("want [ip]:hostPort:containerPort")
		}
		return finishPort(s, m, parts[0], parts[1], bad)
	}
	parts := strings.Split(rest, ":")
	switch len(parts) {
	case 1:
		return finishPort(s, m, "", parts[0], bad)
	case 2:
		return finishPort(s, m, parts[0], parts[1], bad)
	case 3:
		m.HostIP = parts[0]
		return finishPort(s, m, parts[1], parts[2], bad)
	default:
		return bad("too many ':'")
	}
}

func finishPort(s string, m PortMapping, host, ctr string, bad func(string) (PortMapping, error)) (PortMapping, error) {
	if m.HostIP != "" && net.ParseIP(m.HostIP) == nil && m.HostIP != "localhost" {
		return bad(fmt.Sprintf("%q is not an IP address", m.HostIP))
	}
	var err error
	if m.ContainerPort, err = portNumber(ctr, false); err != nil {
		return bad("container port: " + err.Error())
	}
	if host != "" {
		if m.HostPort, err = portNumber(host, true); err != nil {
			return bad("host port: " + err.Error())
		}
	}
	return m, nil
}

func portNumber(s string, zeroOK bool) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if n < 0 || n > 65535 || (n == 0 && !zeroOK) {
		return 0, fmt.Errorf("%d is out of range 1-65535", n)
	}
	return n, nil
}

// ParseVolume parses -v /host/path:/container/path[:ro|:rw]. The host path is made absolute (relative to
// the current directory); whether it exists is checked by Create.
func ParseVolume(s string) (Mount, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return Mount{}, fmt.Errorf("volume %q: want /host/path:/container/path[:ro]: %w", s, ErrInvalid)
	}
	m := Mount{Source: parts[0], Target: parts[1]}
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
			m.ReadOnly = true
		case "rw", "":
		default:
			return Mount{}, fmt.Errorf("volume %q: unknown option %q (ro or rw): %w", s, parts[2], ErrInvalid)
		}
	}
	if m.Source == "" {
		return Mount{}, fmt.Errorf("volume %q: empty host path: %w", s, ErrInvalid)
	}
	if !strings.HasPrefix(m.Source, "/") && !strings.HasPrefix(m.Source, ".") && !strings.HasPrefix(m.Source, "~") {
		return Mount{}, fmt.Errorf("volume %q: named volumes are not supported; give a host path (/abs or ./rel): %w", s, ErrNotSupported)
	}
	abs, err := filepath.Abs(m.Source)
	if err != nil {
		return Mount{}, fmt.Errorf("volume %q: %w", s, err)
	}
	m.Source = abs
	if !strings.HasPrefix(m.Target, "/") {
		return Mount{}, fmt.Errorf("volume %q: container path %q must be absolute: %w", s, m.Target, ErrInvalid)
	}
	m.Target = filepath.Clean(m.Target)
	if m.Target == "/" {
		return Mount{}, fmt.Errorf("volume %q: cannot mount over the container's root: %w", s, ErrInvalid)
	}
	return m, nil
}

// MinMemory is the least memory a container VM may have.
const MinMemory = 64 << 20

// ParseMemory parses Docker's --memory: a number with an optional unit b, k, m, g, t (binary
// multiples, case-insensitive, optional trailing "b" or "ib"): "512m", "1g", "1.5GiB", "268435456".
func ParseMemory(s string) (int64, error) {
	bad := func(why string) (int64, error) {
		return 0, fmt.Errorf("memory %q: %s (e.g. 512m, 2g): %w", s, why, ErrInvalid)
	}
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(t, "ib")
	if len(t) > 1 && strings.HasSuffix(t, "b") && strings.ContainsAny(t[len(t)-2:len(t)-1], "kmgt") {
		t = t[:len(t)-1]
	}
	mult := float64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'b':
			t = t[:len(t)-1]
		case 'k':
			mult, t = 1<<10, t[:len(t)-1]
		case 'm':
			mult, t = 1<<20, t[:len(t)-1]
		case 'g':
			mult, t = 1<<30, t[:len(t)-1]
		case 't':
			mult, t = 1<<40, t[:len(t)-1]
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return bad("not a size")
	}
	n := f * mult
	if n < MinMemory {
		return bad(fmt.Sprintf("less than the minimum of %d MiB", MinMemory>>20))
	}
	if n > 1<<40 {
		return bad("more than 1 TiB")
	}
	return int64(n), nil
}

// ParseCPUs parses --cpus ("2", "1.5"); the VM gets the value rounded up.
func ParseCPUs(s string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || f <= 0 || f > 256 {
		return 0, fmt.Errorf("cpus %q: want a number between 0 and 256: %w", s, ErrInvalid)
	}
	return f, nil
}

// ParseRestartPolicy parses --restart: no, on-failure[:N], always, unless-stopped.
func ParseRestartPolicy(s string) (RestartPolicy, error) {
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
				return RestartPolicy{}, fmt.Errorf("restart policy %q: retry count must be a number >= 0: %w", s, ErrInvalid)
			}
			p.MaximumRetryCount = n
		}
		return p, nil
	default:
		return RestartPolicy{}, fmt.Errorf("restart policy %q: want no, on-failure[:N], always or unless-stopped: %w", s, ErrInvalid)
	}
	if hasCount {
		return RestartPolicy{}, fmt.Errorf("restart policy %q: only on-failure takes a retry count: %w", s, ErrInvalid)
	}
	return p, nil
}

var signals = map[string]syscall.Signal{
	"HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7, "FPE": 8,
	"KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15,
	"STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22,
	"URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29,
	"POLL": 29, "PWR": 30, "SYS": 31,
}

// ParseSignal parses a Linux signal name or number ("SIGTERM", "term", "15", "SIGRTMIN+3"). The
// numbers are the guest's (Linux), whatever the host OS.
func ParseSignal(s string) (int, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	if n, err := strconv.Atoi(t); err == nil {
		if n < 1 || n > 64 {
			return 0, fmt.Errorf("signal %q: out of range 1-64: %w", s, ErrInvalid)
		}
		return n, nil
	}
	t = strings.TrimPrefix(t, "SIG")
	if n, ok := signals[t]; ok {
		return int(n), nil
	}
	if rest, ok := strings.CutPrefix(t, "RTMIN"); ok {
		off := 0
		if rest != "" {
			o, err := strconv.Atoi(strings.TrimPrefix(rest, "+"))
			if err != nil || !strings.HasPrefix(rest, "+") || o < 0 || o > 30 {
				return 0, fmt.Errorf("signal %q: unknown: %w", s, ErrInvalid)
			}
			off = o
		}
		return 34 + off, nil
	}
	return 0, fmt.Errorf("signal %q: unknown: %w", s, ErrInvalid)
}

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// ValidName reports whether s is a valid container name (Docker's rule).
func ValidName(s string) error {
	s = strings.TrimPrefix(s, "/")
	if !nameRE.MatchString(s) || len(s) > 128 {
		return fmt.Errorf("container name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] allowed: %w", s, ErrInvalid)
	}
	return nil
}
