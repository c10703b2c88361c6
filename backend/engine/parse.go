package engine

import (
	"fmt"
	"math"
	"net"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/skiff-containers/skiff/backend/images/disk"
)

// ParseError is what the parsers return: what was parsed, the value as given and why it was
// rejected. It unwraps to ErrInvalid (or ErrNotSupported), so callers can keep the reason and
// word the rest for their users (app's "invalid --memory ...").
type ParseError struct {
	What  string // "port mapping", "volume", "memory", "cpus", "restart policy", "signal", "container name"
	Value string
	Why   string
	Err   error // ErrInvalid or ErrNotSupported
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("%s %q: %s: %v", e.What, e.Value, e.Why, e.Err)
}
func (e *ParseError) Unwrap() error { return e.Err }

func parseErr(what, value, why string) error {
	return &ParseError{What: what, Value: value, Why: why, Err: ErrInvalid}
}

// ParsePort parses Docker's -p syntax: [ip:][hostPort:]containerPort[/tcp|/udp]. "8080:80",
// "127.0.0.1:8080:80/tcp", "80" or "0:80" (a free host port), "127.0.0.1::80", "[::1]:8080:80"
// (unbracketed IPv6, "::1:8080:80", works too, as in Docker). The protocol is case-insensitive and
// an empty one is tcp. As in Docker the address must be an IP ("localhost" is not).
func ParsePort(s string) (PortMapping, error) {
	bad := func(why string) (PortMapping, error) {
		return PortMapping{}, parseErr("port mapping", s, why+" (expected [ip:][hostPort:]containerPort[/tcp|udp])")
	}
	m := PortMapping{Proto: "tcp"}
	rest := s
	if i := strings.LastIndex(rest, "/"); i >= 0 {
		if p := strings.ToLower(rest[i+1:]); p != "" {
			m.Proto = p
		}
		rest = rest[:i]
		if m.Proto != "tcp" && m.Proto != "udp" {
			return bad(fmt.Sprintf("the protocol %q must be tcp or udp", m.Proto))
		}
	}
	var host, ctr string
	hasIP := false
	if strings.HasPrefix(rest, "[") { // [ip]:hostPort:containerPort
		end := strings.Index(rest, "]")
		if end < 0 {
			return bad("unterminated [IPv6 address]")
		}
		if len(rest) <= end+1 || rest[end+1] != ':' {
			return bad("a host and a container port must follow [ip]")
		}
		m.HostIP, hasIP = rest[1:end], true
		parts := strings.Split(rest[end+2:], ":")
		if len(parts) != 2 {
			return bad("both a host and a container port are needed after [ip]")
		}
		host, ctr = parts[0], parts[1]
	} else {
		parts := strings.Split(rest, ":")
		n := len(parts)
		ctr = parts[n-1]
		if n >= 2 {
			host = parts[n-2]
		}
		if n >= 3 {
			m.HostIP, hasIP = strings.Join(parts[:n-2], ":"), n > 3 || parts[0] != ""
		}
	}
	if hasIP && net.ParseIP(m.HostIP) == nil {
		why := fmt.Sprintf("%q is not an IP address", m.HostIP)
		if strings.Contains(m.HostIP, ":") {
			why += "; an IPv6 address goes in brackets: [::1]:8080:80"
		}
		return bad(why)
	}
	var err error
	if ctr == "" {
		return bad("container port: none given")
	}
	if m.ContainerPort, err = portNumber(ctr, false); err != nil {
		return bad("container port: " + err.Error())
	}
	if host != "" { // empty: any free port, as 0 is
		if m.HostPort, err = portNumber(host, true); err != nil {
			return bad("host port: " + err.Error())
		}
	}
	return m, nil
}

func portNumber(s string, zeroOK bool) (int, error) {
	lo := 1
	if zeroOK {
		lo = 0
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > 65535 {
		return 0, fmt.Errorf("%q is not a port number (%d-65535)", s, lo)
	}
	return n, nil
}

// ParseVolume parses -v as Docker does: /host/path:/container/path[:ro|:rw] is a bind mount,
// name:/container/path[:ro|:rw] a named volume (made when missing), and a lone /container/path an
// anonymous volume. As the Docker API does, a bind wants an absolute host path: the parser may run
// in a daemon whose directory is not the user's, so a client resolves "./rel" itself (as the Docker
// CLI does). Whether the path exists is checked by Create.
func ParseVolume(s string) (Mount, error) {
	bad := func(why string) (Mount, error) { return Mount{}, parseErr("volume", s, why) }
	parts := strings.Split(s, ":")
	if len(parts) == 1 && strings.HasPrefix(s, "/") { // an anonymous volume
		t := filepath.Clean(s)
		if t == "/" {
			return bad("cannot mount over the container's root")
		}
		return Mount{Type: MountVolume, Target: t}, nil
	}
	if len(parts) < 2 || len(parts) > 3 {
		return bad("expected /host/path:/container/path[:ro|rw], volume-name:/container/path[:ro|rw] or /container/path")
	}
	m := Mount{Type: MountBind, Source: parts[0], Target: parts[1]}
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
			m.ReadOnly = true
		case "rw", "":
		default:
			return bad(fmt.Sprintf("unknown mode %q (expected ro or rw)", parts[2]))
		}
	}
	switch {
	case m.Source == "":
		return bad("the host path is empty")
	case strings.HasPrefix(m.Source, "."):
		return bad(fmt.Sprintf("the host path %q must be absolute", m.Source))
	case !filepath.IsAbs(m.Source):
		if err := ValidVolumeName(m.Source); err != nil {
			return bad(fmt.Sprintf("%q is neither an absolute host path nor a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]+)", m.Source))
		}
		m.Type, m.Name, m.Source = MountVolume, m.Source, ""
	default:
		m.Source = filepath.Clean(m.Source)
	}
	if !strings.HasPrefix(m.Target, "/") {
		return bad(fmt.Sprintf("the container path %q must be absolute", m.Target))
	}
	m.Target = filepath.Clean(m.Target)
	if m.Target == "/" {
		return bad("cannot mount over the container's root")
	}
	return m, nil
}

// ParseTmpfs parses --tmpfs /container/path[:size=64m,mode=1777,ro] (Docker's options; the
// others it accepts, such as noexec, are refused as not supported).
func ParseTmpfs(s string) (Mount, error) {
	bad := func(why string) (Mount, error) { return Mount{}, parseErr("tmpfs", s, why) }
	target, opts, _ := strings.Cut(s, ":")
	if !strings.HasPrefix(target, "/") || filepath.Clean(target) == "/" {
		return bad("the container path must be absolute and not /")
	}
	m := Mount{Type: MountTmpfs, Target: filepath.Clean(target)}
	for _, o := range strings.Split(opts, ",") {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "", "rw", "nosuid", "nodev":
		case "ro":
			m.ReadOnly = true
		case "size":
			n, err := ParseSize(v)
			if err != nil {
				return bad(fmt.Sprintf("size %q: expected a size such as 64m", v))
			}
			m.TmpfsSize = n
		case "mode":
			n, err := strconv.ParseUint(v, 8, 32)
			if err != nil || n > 0o7777 {
				return bad(fmt.Sprintf("mode %q: expected octal permission bits such as 1777", v))
			}
			m.TmpfsMode = uint32(n)
		default:
			return Mount{}, &ParseError{What: "tmpfs", Value: s, Err: ErrNotSupported, Why: fmt.Sprintf("option %q is not supported (size, mode, ro are)", k)}
		}
	}
	return m, nil
}

// ParseSize parses a byte size in Docker's RAMInBytes syntax ("64m", "1g", "4096").
func ParseSize(s string) (int64, error) {
	sub := memoryRE.FindStringSubmatch(strings.ToLower(strings.TrimSpace(s)))
	if sub == nil {
		return 0, parseErr("size", s, "expected a size such as 64m or 2g")
	}
	f, err := strconv.ParseFloat(sub[1], 64)
	if err != nil {
		return 0, parseErr("size", s, "expected a size such as 64m or 2g")
	}
	if sub[2] != "" {
		f *= float64(int64(1) << (10 * (1 + strings.Index("kmgtp", sub[2]))))
	}
	if f > MaxMemory {
		return 0, parseErr("size", s, "at most 1 TiB")
	}
	return int64(f), nil
}

// MinMemory is the least memory a container VM may have (Docker's floor is 6 MiB, too little to boot).
const MinMemory = 64 << 20

// MaxMemory is the most memory a container VM may have.
const MaxMemory = 1 << 40

// memoryRE is Docker's RAMInBytes syntax: a number, an optional space, an optional binary unit
// (k, m, g, t, p), then optional "i" and "b", case-insensitive: "512m", "1g", "1.5GiB", "268435456".
var memoryRE = regexp.MustCompile(`^(\d+(?:\.\d+)?) ?([kmgtp])?i?b?$`)

// ParseMemory parses Docker's --memory into bytes, between MinMemory and MaxMemory.
func ParseMemory(s string) (int64, error) {
	sub := memoryRE.FindStringSubmatch(strings.ToLower(strings.TrimSpace(s)))
	if sub == nil {
		return 0, parseErr("memory", s, "expected a size such as 512m or 2g")
	}
	f, err := strconv.ParseFloat(sub[1], 64)
	if err != nil {
		return 0, parseErr("memory", s, "expected a size such as 512m or 2g")
	}
	if sub[2] != "" {
		f *= float64(int64(1) << (10 * (1 + strings.Index("kmgtp", sub[2]))))
	}
	if f < MinMemory {
		return 0, parseErr("memory", s, fmt.Sprintf("a container needs at least %d MiB", MinMemory>>20))
	}
	if f > MaxMemory {
		return 0, parseErr("memory", s, "a container may have at most 1 TiB")
	}
	return int64(f), nil
}

// ParseCPUs parses --cpus ("2", "1.5"); the VM gets the value rounded up. As in Docker the range
// is 0.01 to the host's CPU count.
func ParseCPUs(s string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) {
		return 0, parseErr("cpus", s, "expected a number such as 1 or 1.5")
	}
	if n := runtime.NumCPU(); f < 0.01 || f > float64(n) {
		return 0, parseErr("cpus", s, fmt.Sprintf("the range of CPUs is from 0.01 to %d, as there are %d CPUs", n, n))
	}
	return f, nil
}

// ParseRestartPolicy parses --restart: no, on-failure[:N], always, unless-stopped; "" is no.
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
				return RestartPolicy{}, parseErr("restart policy", s, "the retry count must be a non-negative number")
			}
			p.MaximumRetryCount = n
		}
		return p, nil
	default:
		return RestartPolicy{}, parseErr("restart policy", s, "expected no, on-failure[:N], always or unless-stopped")
	}
	if hasCount {
		return RestartPolicy{}, parseErr("restart policy", s, "only on-failure takes a retry count")
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
			return 0, parseErr("signal", s, "out of range 1-64")
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
				return 0, parseErr("signal", s, "unknown")
			}
			off = o
		}
		return 34 + off, nil
	}
	return 0, parseErr("signal", s, "unknown")
}

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// ValidName reports whether s is a valid container name (Docker's rule; a leading "/" is allowed).
func ValidName(s string) error {
	t := strings.TrimPrefix(s, "/")
	if !nameRE.MatchString(t) {
		return parseErr("container name", s, "only [a-zA-Z0-9][a-zA-Z0-9_.-]* are allowed")
	}
	if len(t) > 128 {
		return parseErr("container name", s, "at most 128 characters are allowed")
	}
	return nil
}

var labelRE = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$`)

// ValidHostname checks a container hostname: RFC 1123 labels (letters, digits and '-', not at
// either end, 1-63 characters each) joined by dots, at most 253 characters. The hostname reaches
// the guest's kernel command line, so nothing else may pass.
func ValidHostname(s string) error {
	if len(s) > 253 {
		return parseErr("hostname", s, "at most 253 characters are allowed")
	}
	for _, l := range strings.Split(s, ".") {
		if len(l) > 63 {
			return parseErr("hostname", s, fmt.Sprintf("label %q is longer than 63 characters", l))
		}
		if !labelRE.MatchString(l) {
			return parseErr("hostname", s, "want dot-separated labels of letters, digits and '-' (not at a label's start or end)")
		}
	}
	return nil
}

// ParseStorageOpt parses Docker's --storage-opt list; only "size=<size>" is known (the writable
// disk's size: "20G", "512m", "1.5t", bytes). It returns 0 when no size is given.
func ParseStorageOpt(opts []string) (int64, error) {
	var size int64
	for _, o := range opts {
		k, v, ok := strings.Cut(o, "=")
		if !ok || strings.TrimSpace(k) != "size" {
			return 0, parseErr("storage option", o, "only size=<size> is supported (e.g. size=20G)")
		}
		n, err := ParseStorageSize(v)
		if err != nil {
			return 0, err
		}
		size = n
	}
	return size, nil
}

// ParseStorageSize parses a writable disk size such as "20G", "512m" or a number of bytes, within
// what a writable disk may be (64 MiB to 4 TiB).
func ParseStorageSize(s string) (int64, error) {
	sub := memoryRE.FindStringSubmatch(strings.ToLower(strings.TrimSpace(s)))
	if sub == nil {
		return 0, parseErr("storage size", s, "expected a size such as 20G or 512m")
	}
	f, err := strconv.ParseFloat(sub[1], 64)
	if err != nil {
		return 0, parseErr("storage size", s, "expected a size such as 20G or 512m")
	}
	if sub[2] != "" {
		f *= float64(int64(1) << (10 * (1 + strings.Index("kmgtp", sub[2]))))
	}
	if f < float64(disk.MinWritableSize) || f > float64(disk.MaxWritableSize) {
		return 0, parseErr("storage size", s, fmt.Sprintf("a container's disk is %d MiB to %d TiB", disk.MinWritableSize>>20, disk.MaxWritableSize>>40))
	}
	return int64(f), nil
}
