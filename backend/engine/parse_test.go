package engine

import (
	"errors"
	"runtime"
	"strconv"
	"testing"
)

func TestParsePort(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want PortMapping
		err  bool
	}{
		{"8080:80", PortMapping{HostPort: 8080, ContainerPort: 80, Proto: "tcp"}, false},
		{"127.0.0.1:8080:80/tcp", PortMapping{HostIP: "127.0.0.1", HostPort: 8080, ContainerPort: 80, Proto: "tcp"}, false},
		{"80", PortMapping{ContainerPort: 80, Proto: "tcp"}, false},
		{"127.0.0.1::80", PortMapping{HostIP: "127.0.0.1", ContainerPort: 80, Proto: "tcp"}, false},
		{"[::1]:8080:80", PortMapping{HostIP: "::1", HostPort: 8080, ContainerPort: 80, Proto: "tcp"}, false},
		{"53:53/udp", PortMapping{HostPort: 53, ContainerPort: 53, Proto: "udp"}, false},
		{"53:53/UDP", PortMapping{HostPort: 53, ContainerPort: 53, Proto: "udp"}, false},
		{"80/", PortMapping{ContainerPort: 80, Proto: "tcp"}, false},
		{"0:80", PortMapping{ContainerPort: 80, Proto: "tcp"}, false},
		{"::80", PortMapping{ContainerPort: 80, Proto: "tcp"}, false},
		{"[1.2.3.4]:8080:80", PortMapping{HostIP: "1.2.3.4", HostPort: 8080, ContainerPort: 80, Proto: "tcp"}, false},
		{"::1:8080:80/udp", PortMapping{HostIP: "::1", HostPort: 8080, ContainerPort: 80, Proto: "udp"}, false},
		{"localhost:8080:80", PortMapping{}, true},
		{"[::1:8080:80", PortMapping{}, true},
		{"[::1]8080:80", PortMapping{}, true},
		{"[::1]:80", PortMapping{}, true},
		{"[]:8080:80", PortMapping{}, true},
		{"-1:80", PortMapping{}, true},
		{"8080:", PortMapping{}, true},
		{"8080:80/sctp", PortMapping{}, true},
		{"abc", PortMapping{}, true},
		{"8080:0", PortMapping{}, true},
		{"70000:80", PortMapping{}, true},
		{"1.2.3:80:80", PortMapping{}, true},
		{"a:b:c:d", PortMapping{}, true},
		{"", PortMapping{}, true},
	} {
		got, err := ParsePort(tc.in)
		if tc.err {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("ParsePort(%q) = %+v, %v; want ErrInvalid", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParsePort(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseVolume(t *testing.T) {
	m, err := ParseVolume("/src:/dst:ro")
	if err != nil || m != (Mount{Type: MountBind, Source: "/src", Target: "/dst", ReadOnly: true}) {
		t.Fatalf("got %+v, %v", m, err)
	}
	m, err = ParseVolume("/src/:/dst/sub/")
	if err != nil || m.Source != "/src" || m.Target != "/dst/sub" || m.ReadOnly {
		t.Fatalf("got %+v, %v", m, err)
	}
	for _, bad := range []string{"/", "rel", "/src:rel", "/src:/", "/src:/dst:rx", ":/dst", "a:b:c:d", "./rel:/dst",
		"../up:/dst", "x:/data", "-v:/data", "bad name:/data", "n@me:/data", "data:rel"} {
		if _, err := ParseVolume(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseVolume(%q): %v, want ErrInvalid", bad, err)
		}
	}
	m, err = ParseVolume("db-data:/var/lib/db/:ro")
	if err != nil || m != (Mount{Type: MountVolume, Name: "db-data", Target: "/var/lib/db", ReadOnly: true}) {
		t.Errorf("named volume: %+v, %v", m, err)
	}
	m, err = ParseVolume("/cache/")
	if err != nil || m != (Mount{Type: MountVolume, Target: "/cache"}) {
		t.Errorf("anonymous volume: %+v, %v", m, err)
	}
}

func TestParseTmpfs(t *testing.T) {
	m, err := ParseTmpfs("/run/x:size=64m,mode=700,ro")
	if err != nil || m != (Mount{Type: MountTmpfs, Target: "/run/x", TmpfsSize: 64 << 20, TmpfsMode: 0o700, ReadOnly: true}) {
		t.Errorf("got %+v, %v", m, err)
	}
	for _, bad := range []string{"rel", "/", "/x:size=lots", "/x:mode=999"} {
		if _, err := ParseTmpfs(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseTmpfs(%q): %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := ParseTmpfs("/x:noexec"); !errors.Is(err, ErrNotSupported) {
		t.Errorf("noexec: %v, want ErrNotSupported", err)
	}
}

func TestParseMemory(t *testing.T) {
	for in, want := range map[string]int64{
		"512m": 512 << 20, "1g": 1 << 30, "1G": 1 << 30, "1.5GiB": 3 << 29, "268435456": 256 << 20,
		"64MB": 64 << 20, "100000k": 100000 << 10, "1.5 g": 3 << 29, "512mi": 512 << 20, "1t": 1 << 40,
	} {
		got, err := ParseMemory(in)
		if err != nil || got != want {
			t.Errorf("ParseMemory(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "abc", "-5m", "10x", "1m", "0", "NaN", "2t5", "5000t", "1p", "1e9", ".5g", "m"} {
		if n, err := ParseMemory(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseMemory(%q) = %d, %v; want ErrInvalid", bad, n, err)
		}
	}
}

func TestParseCPUsAndRestart(t *testing.T) {
	for in, want := range map[string]float64{"0.5": 0.5, "0.01": 0.01, strconv.Itoa(runtime.NumCPU()): float64(runtime.NumCPU())} {
		if f, err := ParseCPUs(in); err != nil || f != want {
			t.Errorf("ParseCPUs(%q) = %v, %v", in, f, err)
		}
	}
	// Docker's range: 0.01 to the host's CPU count.
	for _, bad := range []string{"0", "-1", "x", "1000", "NaN", "0.001", strconv.Itoa(runtime.NumCPU() + 1)} {
		if _, err := ParseCPUs(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseCPUs(%q): %v", bad, err)
		}
	}
	for in, want := range map[string]RestartPolicy{
		"": {Name: "no"}, "no": {Name: "no"}, "always": {Name: "always"},
		"unless-stopped": {Name: "unless-stopped"}, "on-failure": {Name: "on-failure"},
		"on-failure:2": {Name: "on-failure", MaximumRetryCount: 2},
	} {
		got, err := ParseRestartPolicy(in)
		if err != nil || got != want {
			t.Errorf("ParseRestartPolicy(%q) = %+v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"sometimes", "on-failure:x", "on-failure:-1", "always:3"} {
		if _, err := ParseRestartPolicy(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseRestartPolicy(%q): %v", bad, err)
		}
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]int{"SIGTERM": 15, "term": 15, "15": 15, "KILL": 9, "sigusr1": 10,
		"SIGRTMIN": 34, "SIGRTMIN+3": 37, "HUP": 1} {
		if got, err := ParseSignal(in); err != nil || got != want {
			t.Errorf("ParseSignal(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "SIGFOO", "0", "65", "RTMIN-1"} {
		if _, err := ParseSignal(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseSignal(%q): %v", bad, err)
		}
	}
}

func TestNamesAndIDs(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		id := NewID()
		if len(id) != 64 || seen[id] || len(ShortID(id)) != 12 {
			t.Fatalf("bad id %q", id)
		}
		seen[id] = true
	}
	taken := map[string]bool{}
	for i := 0; i < 1000; i++ {
		n := generateName(func(s string) bool { return taken[s] })
		if taken[n] || ValidName(n) != nil {
			t.Fatalf("generated name %q taken or invalid", n)
		}
		taken[n] = true
	}
	for _, bad := range []string{"bad name", "", "-x", "a/b", string(make([]byte, 129))} {
		if err := ValidName(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidName(%q) = %v", bad, err)
		}
	}
	if err := ValidName("/web-1.a_b"); err != nil {
		t.Errorf("ValidName(/web-1.a_b) = %v", err)
	}
	id := NewID()
	if again := macFor(id); again != macFor(id[:10]+NewID()[10:]) || len(again) != 17 || again[:3] != "02:" {
		t.Errorf("macFor: %q", macFor(id))
	}
}

func TestParseError(t *testing.T) {
	_, err := ParseMemory("lots")
	var pe *ParseError
	if !errors.As(err, &pe) || pe.What != "memory" || pe.Value != "lots" || pe.Why == "" || !errors.Is(err, ErrInvalid) {
		t.Fatalf("ParseMemory(lots) = %#v", err)
	}
	if got, want := err.Error(), `memory "lots": `+pe.Why+": invalid"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if _, err := ParseTmpfs("/x:noexec"); !errors.As(err, &pe) || !errors.Is(err, ErrNotSupported) {
		t.Errorf("tmpfs noexec: %#v", err)
	}
}
