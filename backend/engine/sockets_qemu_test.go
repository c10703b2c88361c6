//go:build linux

package engine

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDockerSocketQEMU: a bind mount of the engine's Docker socket gives the container, in a real
// VM, a unix socket at the target whose connections reach the engine's socket (here an HTTP
// server listing the engine's containers, as the Docker API does): the container lists itself.
// /var/run/docker.sock as the source means the same; any other unix socket is refused.
func TestDockerSocketQEMU(t *testing.T) {
	e, host, _ := qemuEngine(t)
	ctx := ctxT(t, 10*time.Minute)
	dir := t.TempDir()
	sock := filepath.Join(dir, "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/containers/json" {
			http.NotFound(w, r)
			return
		}
		var names []string
		cs, err := e.List(r.Context(), ListOptions{All: true})
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		for _, c := range cs {
			names = append(names, "/"+c.Name)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"Names": names})
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	e.cfg.DockerSocket = sock

	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "sockget"), "./testdata/sockget")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building sockget: %v\n%s", err, out)
	}

	other, err := net.Listen("unix", filepath.Join(dir, "other.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_, err = e.Create(ctx, CreateOptions{Image: host + "/busybox:latest", Cmd: []string{"true"},
		Mounts: []Mount{{Source: filepath.Join(dir, "other.sock"), Target: "/run/other.sock"}}})
	if !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), "unix socket") {
		t.Fatalf("another unix socket: err %v, want ErrNotSupported naming the unix socket", err)
	}

	c, err := e.Create(ctx, CreateOptions{Image: host + "/busybox:latest", Name: "sock-user",
		Cmd: []string{"sleep", "3600"},
		Mounts: []Mount{
			{Source: sock, Target: "/var/run/docker.sock"},
			{Source: "/var/run/docker.sock", Target: "/alias/docker.sock"},
			{Source: bin, Target: "/sk", ReadOnly: true},
		}})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Mounts) != 1 || strings.Join(c.Config.Sockets, ",") != "/var/run/docker.sock,/alias/docker.sock" {
		t.Fatalf("mounts %+v sockets %v: want the folder shared and the two sockets apart", c.Mounts, c.Config.Sockets)
	}
	if err := e.Start(ctx, c.ID); err != nil {
		console, _ := os.ReadFile(e.consolePath(c.ID))
		t.Fatalf("start: %v\nconsole:\n%s", err, console)
	}
	for _, target := range c.Config.Sockets {
		out, code := execOut(t, e, c.ID, "/sk/sockget", target, "/containers/json")
		if code != 0 || !strings.Contains(out, "200 OK") || !strings.Contains(out, `"/sock-user"`) {
			t.Fatalf("through %s: exit %d, output %q: want the engine's answer listing the container", target, code, out)
		}
	}
	if out, code := execOut(t, e, c.ID, "sh", "-c", "ls -l /var/run/docker.sock"); code != 0 || !strings.HasPrefix(out, "s") {
		t.Fatalf("ls: exit %d %q: want a socket", code, out)
	}
}
