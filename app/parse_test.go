package app

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func TestParsePort(t *testing.T) {
	tests := []struct {
		in      string
		want    PortMapping
		wantErr string
	}{
		{in: "8080:80", want: PortMapping{HostPort: 8080, ContainerPort: 80, Proto: "tcp"}},
		{in: "127.0.0.1:8080:80/udp", want: PortMapping{HostIP: "127.0.0.1", HostPort: 8080, ContainerPort: 80, Proto: "udp"}},
		{in: "[::1]:53:53/UDP", want: PortMapping{HostIP: "::1", HostPort: 53, ContainerPort: 53, Proto: "udp"}},
		{in: "80", want: PortMapping{ContainerPort: 80, Proto: "tcp"}},
		{in: "127.0.0.1::80", want: PortMapping{HostIP: "127.0.0.1", ContainerPort: 80, Proto: "tcp"}},
		{in: "abc", wantErr: "container port"},
		{in: "", wantErr: "container port"},
		{in: "8080:80/sctp", wantErr: "tcp or udp"},
		{in: "0:80", want: PortMapping{ContainerPort: 80, Proto: "tcp"}}, // unified: 0 is any free port, as in Docker
		{in: "-1:80", wantErr: "host port"},
		{in: "8080:70000", wantErr: "container port"},
		{in: "abc:80", wantErr: "host port"},
		{in: "1.2.3:8080:80", wantErr: "not an IP address"},
		{in: "[1.2.3.4]:8080:80", want: PortMapping{HostIP: "1.2.3.4", HostPort: 8080, ContainerPort: 80, Proto: "tcp"}}, // unified: Docker accepts it
		{in: "::1:8080:80", want: PortMapping{HostIP: "::1", HostPort: 8080, ContainerPort: 80, Proto: "tcp"}},
		{in: "localhost:8080:80", wantErr: "not an IP address"},
		{in: "[]:8080:80", wantErr: "not an IP address"},
		{in: "[::1:8080:80", wantErr: "unterminated"},
		{in: "a:b:c:d", wantErr: "not an IP address"}, // unified: more ':' is an unbracketed IPv6 address, as in Docker
		{in: "[::1]:80", wantErr: "both a host"},
	}
	for _, tt := range tests {
		got, err := ParsePort(tt.in)
		checkErr(t, tt.in, err, tt.wantErr)
		if tt.wantErr == "" && got != tt.want {
			t.Errorf("ParsePort(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseVolume(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		in      string
		want    Mount
		wantErr string
	}{
		{in: dir + ":/data", want: Mount{Source: dir, Target: "/data"}},
		{in: dir + "/:/data/:ro", want: Mount{Source: dir, Target: "/data", ReadOnly: true}},
		{in: dir + ":/data:rw", want: Mount{Source: dir, Target: "/data"}},
		{in: dir + ":/data:rx", wantErr: "unknown mode"},
		{in: "./relative:/data", wantErr: "must be absolute"},
		{in: "n@me:/data", wantErr: "volume name"},
		{in: "cache:/data:ro", want: Mount{Type: "volume", Name: "cache", Target: "/data", ReadOnly: true}},
		{in: "/data", want: Mount{Type: "volume", Target: "/data"}},
		{in: dir + "/missing:/data", wantErr: "does not exist"},
		{in: dir + ":data", wantErr: "container path"},
		{in: dir + ":/", wantErr: "root"},
		{in: "a:b:c:d", wantErr: "expected /host/path"},
	}
	for _, tt := range tests {
		got, err := ParseVolume(tt.in)
		checkErr(t, tt.in, err, tt.wantErr)
		if tt.wantErr == "" && got != tt.want {
			t.Errorf("ParseVolume(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseMemory(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr string
	}{
		{in: "", want: 0},
		{in: "512m", want: 512},
		{in: "512M", want: 512},
		{in: "1g", want: 1024},
		{in: "1.5GB", want: 1536},
		{in: "2GiB", want: 2048},
		{in: "131072k", want: 128},
		{in: "268435456", want: 256},
		{in: "lots", wantErr: "expected a size"},
		{in: "-1g", wantErr: "expected a size"},
		{in: "12x", wantErr: "expected a size"},
		{in: "m", wantErr: "expected a size"},
		{in: "10m", wantErr: "at least 64 MiB"},
		{in: "1.5 g", want: 1536}, // Docker's syntax: an optional space, "i" without "b"
		{in: "512mi", want: 512},
		{in: "2t", wantErr: "at most 1 TiB"},
	}
	for _, tt := range tests {
		got, err := ParseMemory(tt.in)
		checkErr(t, tt.in, err, tt.wantErr)
		if tt.wantErr == "" && got != tt.want {
			t.Errorf("ParseMemory(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestParseRestartAndCPUs(t *testing.T) {
	restarts := []struct {
		in      string
		want    RestartPolicy
		wantErr string
	}{
		{in: "", want: RestartPolicy{Name: "no"}},
		{in: "no", want: RestartPolicy{Name: "no"}},
		{in: "always", want: RestartPolicy{Name: "always"}},
		{in: "unless-stopped", want: RestartPolicy{Name: "unless-stopped"}},
		{in: "on-failure", want: RestartPolicy{Name: "on-failure"}},
		{in: "on-failure:2", want: RestartPolicy{Name: "on-failure", MaxRetries: 2}},
		{in: "on-failure:-1", wantErr: "non-negative"},
		{in: "always:3", wantErr: "only on-failure"},
		{in: "sometimes", wantErr: "expected no, on-failure"},
	}
	for _, tt := range restarts {
		got, err := ParseRestart(tt.in)
		checkErr(t, tt.in, err, tt.wantErr)
		if tt.wantErr == "" && got != tt.want {
			t.Errorf("ParseRestart(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
	cpus := []struct {
		in      string
		want    float64
		wantErr string
	}{
		{in: "", want: 0}, {in: "1", want: 1}, {in: "0.5", want: 0.5},
		{in: "0", wantErr: "range"}, {in: "1000", wantErr: "range"}, {in: "two", wantErr: "expected a number"},
		{in: "0.001", wantErr: "range"}, // unified: Docker's lower bound
		{in: strconv.Itoa(runtime.NumCPU()), want: float64(runtime.NumCPU())},
		{in: "NaN", wantErr: "expected a number"},
	}
	for _, tt := range cpus {
		got, err := ParseCPUs(tt.in)
		checkErr(t, tt.in, err, tt.wantErr)
		if tt.wantErr == "" && got != tt.want {
			t.Errorf("ParseCPUs(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestParseRunRequest(t *testing.T) {
	dir := t.TempDir()
	envFile := filepath.Join(dir, "env")
	os.WriteFile(envFile, []byte("# comment\n\nA=from-file\nB=b\nSKIFF_TEST_FROM_HOST\nSKIFF_TEST_UNSET\n"), 0o600)
	t.Setenv("SKIFF_TEST_FROM_HOST", "host")
	ep := []string{}
	spec, err := ParseRunRequest(RunRequest{
		Image: "busybox", Name: "web-1.a_b", Entrypoint: &ep, Cmd: []string{"httpd", "-f"},
		Env: []string{"A=from-flag", "C="}, EnvFiles: []string{envFile}, Ports: []string{"8080:80"},
		Volumes: []string{dir + ":/srv:ro"}, Workdir: "/srv", Hostname: "web.local", CPUs: "1", Memory: "256m",
		Restart: "on-failure:2", Platform: "linux/arm64", Pull: "never", Labels: []string{"k=v", "flag"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := &RunSpec{
		Image: "busybox", Name: "web-1.a_b", Entrypoint: &ep, Cmd: []string{"httpd", "-f"},
		Env:     []string{"B=b", "SKIFF_TEST_FROM_HOST=host", "A=from-flag", "C="},
		Ports:   []PortMapping{{HostPort: 8080, ContainerPort: 80, Proto: "tcp"}},
		Mounts:  []Mount{{Source: dir, Target: "/srv", ReadOnly: true}},
		Workdir: "/srv", Hostname: "web.local", CPUs: 1, MemoryMiB: 256,
		Restart:  RestartPolicy{Name: "on-failure", MaxRetries: 2},
		Platform: "linux/arm64", Pull: "never", Labels: map[string]string{"k": "v", "flag": ""},
	}
	if !reflect.DeepEqual(spec, want) {
		t.Errorf("ParseRunRequest:\n got %+v\nwant %+v", spec, want)
	}

	bad := []struct {
		req     RunRequest
		wantErr string
	}{
		{RunRequest{}, "image is required"},
		{RunRequest{Image: "bad image"}, "white space"},
		{RunRequest{Image: "busybox", Name: "-x"}, "invalid container name"},
		{RunRequest{Image: "busybox", Name: "a/b"}, "invalid container name"},
		{RunRequest{Image: "busybox", Env: []string{"NOVALUE"}}, "KEY=VALUE"},
		{RunRequest{Image: "busybox", EnvFiles: []string{dir + "/none"}}, "reading env file"},
		{RunRequest{Image: "busybox", Ports: []string{"80:80:80:80"}}, "port mapping"},
		{RunRequest{Image: "busybox", Volumes: []string{"/does/not/exist:/x"}}, "does not exist"},
		{RunRequest{Image: "busybox", Memory: "lots"}, "--memory"},
		{RunRequest{Image: "busybox", Workdir: "rel"}, "--workdir"},
		{RunRequest{Image: "busybox", Hostname: "bad_host"}, "--hostname"},
		{RunRequest{Image: "busybox", Platform: "amd64"}, "--platform"},
		{RunRequest{Image: "busybox", Pull: "sometimes"}, "--pull"},
		{RunRequest{Image: "busybox", Restart: "always", AutoRemove: true}, "--rm"},
		{RunRequest{Image: "busybox", Labels: []string{"=v"}}, "label"},
	}
	for _, tt := range bad {
		_, err := ParseRunRequest(tt.req)
		checkErr(t, tt.wantErr, err, tt.wantErr)
	}
}

func checkErr(t *testing.T, in string, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%q: unexpected error %v", in, err)
	case want != "" && err == nil:
		t.Errorf("%q: no error, want one containing %q", in, want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("%q: error %q does not contain %q", in, err, want)
	case want != "" && !errors.Is(err, ErrInvalid):
		t.Errorf("%q: error %v is not ErrInvalid", in, err)
	}
}

func TestRunSpecRequestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	ep := []string{"/bin/sh"}
	reqs := []RunRequest{
		{Image: "busybox"},
		{Image: "busybox", Name: "x", Entrypoint: &ep, Cmd: []string{"-c", "true"}, Env: []string{"A=1"},
			Ports:   []string{"8080:80", "127.0.0.1:53:53/udp", "[::1]:8443:443", "9000", "127.0.0.1::81"},
			Volumes: []string{dir + ":/d:ro", dir + ":/e"}, Workdir: "/d", User: "app", Hostname: "h", CPUs: "0.5",
			Memory: "1g", Restart: "on-failure:3", Platform: "linux/arm64", Pull: "never", Labels: []string{"a=b"},
			TTY: true, Interactive: true},
		{Image: "busybox", Restart: "unless-stopped"},
		{Image: "busybox", AutoRemove: true},
		{Image: "busybox", Volumes: []string{"data:/data:ro", "/cache"}, HealthCmd: "test -f /ok", HealthInterval: "1s",
			HealthTimeout: "2.5s", HealthStartPeriod: "1m0s", HealthStartInterval: "100ms", HealthRetries: 4},
		{Image: "busybox", NoHealthcheck: true},
	}
	for _, req := range reqs {
		spec, err := ParseRunRequest(req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseRunRequest(spec.Request())
		if err != nil {
			t.Fatalf("%+v: %v", spec.Request(), err)
		}
		if !reflect.DeepEqual(spec, again) {
			t.Errorf("round trip:\n got %+v\nwant %+v", again, spec)
		}
	}
}

// The run dialog attributes an error to a field by its prefix (frontend/src/lib/fields.ts).
func TestParseErrorPrefixes(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		req    RunRequest
		prefix string
	}{
		{RunRequest{Image: "busybox", Name: strings.Repeat("a", 129)}, "invalid container name "},
		{RunRequest{Image: "busybox", Ports: []string{"localhost:80:80"}}, "invalid port mapping "},
		{RunRequest{Image: "busybox", Ports: []string{"80/sctp"}}, "invalid port mapping "},
		{RunRequest{Image: "busybox", Volumes: []string{"n@med:/data"}}, "invalid volume "},
		{RunRequest{Image: "busybox", Volumes: []string{"./rel:/data"}}, "invalid volume "},
		{RunRequest{Image: "busybox", Volumes: []string{dir + "/none:/data"}}, "invalid volume "},
		{RunRequest{Image: "busybox", Memory: "2t"}, "invalid --memory "},
		{RunRequest{Image: "busybox", Memory: "1m"}, "invalid --memory "},
		{RunRequest{Image: "busybox", CPUs: "0.001"}, "invalid --cpus "},
		{RunRequest{Image: "busybox", CPUs: strconv.Itoa(runtime.NumCPU() + 1)}, "invalid --cpus "},
		{RunRequest{Image: "busybox", Restart: "on-failure:x"}, "invalid --restart "},
		{RunRequest{Image: "busybox", HealthInterval: "soon"}, "invalid --health-interval "},
		{RunRequest{Image: "busybox", HealthRetries: -1}, "invalid --health-retries "},
		{RunRequest{Image: "busybox", NoHealthcheck: true, HealthCmd: "true"}, "conflicting options"},
	} {
		_, err := ParseRunRequest(tt.req)
		if err == nil || !strings.HasPrefix(err.Error(), tt.prefix) || !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: error %v, want an invalid one starting %q", tt.req, err, tt.prefix)
		}
	}
}

// --storage-opt size= is the writable disk's size; anything else is refused naming the flag.
func TestParseStorageOpt(t *testing.T) {
	s, err := ParseRunRequest(RunRequest{Image: "busybox", StorageOpt: []string{"size=20G"}})
	if err != nil || s.StorageSize != 20<<30 {
		t.Fatalf("size=20G: %+v, %v", s, err)
	}
	for _, bad := range []string{"size=1k", "inodes=5", "size"} {
		if _, err := ParseRunRequest(RunRequest{Image: "busybox", StorageOpt: []string{bad}}); err == nil || !strings.Contains(err.Error(), "--storage-opt") {
			t.Errorf("%s: %v, want an error naming --storage-opt", bad, err)
		}
	}
}
