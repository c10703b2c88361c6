package cli_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// Bad input gives a clear message and a non-zero exit, and leaves nothing behind: no record (by
// name), no listener (the published port stays free).
func TestBadInput(t *testing.T) {
	need(t)
	t.Parallel()
	dup := strings.TrimSpace(ok(t, "create", "--name", "taken", env.image))
	t.Cleanup(func() { skiff(t, "rm", "-f", dup) })
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"malformed -p", []string{"-p", "80:99999"}, "invalid port mapping"},
		{"missing image", []string{}, "nosuch"},
		{"missing -v source", []string{"-v", "/nonexistent/dir:/data"}, "/nonexistent/dir"},
		{"--memory nonsense", []string{"--memory", "lots"}, "--memory"},
		{"duplicate name", []string{}, "taken"},
	}
	for i, tt := range tests {
		port := freePort(t)
		name := fmt.Sprintf("bad-%d", i)
		args := append([]string{"run", "--name", name, "-p", fmt.Sprintf("127.0.0.1:%d:80", port)}, tt.args...)
		image := env.image
		switch tt.name {
		case "missing image":
			image = env.regHost + "/nosuch:latest"
		case "duplicate name":
			args[2] = "taken"
		}
		args = append(args, image, "true")
		r := skiff(t, args...)
		if r.code == 0 || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("%s: %s; want a non-zero exit and a message with %q", tt.name, r, tt.want)
		}
		if r.code != 125 {
			t.Errorf("%s: exit %d, want 125", tt.name, r.code)
		}
		if tt.name != "duplicate name" {
			if ir := skiff(t, "inspect", name); ir.code == 0 {
				t.Errorf("%s: a container record was left: %s", tt.name, ir.stdout)
			}
		}
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
			c.Close()
			t.Errorf("%s: something listens on the published port %d", tt.name, port)
		}
	}
	if n := strings.Count(ok(t, "ps", "-a", "--format", "json"), `"Name":"taken"`); n != 1 {
		t.Errorf("%d containers named taken, want 1", n)
	}
}

func TestNoEngineMessage(t *testing.T) {
	need(t)
	t.Parallel()
	r := skiffIn(t, t.TempDir(), "", "ps")
	if r.code == 0 || !strings.Contains(r.stderr, "no Skiff engine is running") || !strings.Contains(r.stderr, "skiff daemon") {
		t.Errorf("ps without an engine: %s", r)
	}
}
