//go:build linux

package engine

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/internal/testutil"
)

// TestDockerSocketQEMU: a bind mount of the engine's Docker socket gives the container, in a real
// VM, a unix socket at the target whose connections reach the engine's socket (here an HTTP
// server listing the engine's containers, as the Docker API does): the container lists itself.
// /var/run/docker.sock as the source means the same; any other host unix socket is carried to itself.
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
	if _, err := testutil.BuildSockClient(bin); err != nil {
		t.Fatal(err)
	}

	// Another host socket (an HTTP server of the test's): carried to it, and only to it.
	otherPath := filepath.Join(dir, "other.sock")
	other, err := net.Listen("unix", otherPath)
	if err != nil {
		t.Fatal(err)
	}
	osrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("other socket at " + r.URL.Path))
	})}
	go osrv.Serve(other)
	t.Cleanup(func() { osrv.Close() })

	c, err := e.Create(ctx, CreateOptions{Image: host + "/busybox:latest", Name: "sock-user",
		Cmd: []string{"sleep", "3600"},
		Mounts: []Mount{
			{Source: sock, Target: "/var/run/docker.sock"},
			{Source: "/var/run/docker.sock", Target: "/alias/docker.sock"},
			{Source: bin, Target: "/sk", ReadOnly: true},
			{Source: otherPath, Target: "/run/other.sock"},
		}})
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, b := range c.Config.SocketBinds {
		targets = append(targets, b.Target)
		if b.Docker != (b.Target != "/run/other.sock") {
			t.Errorf("socket bind %+v: only the Docker socket's is Docker", b)
		}
	}
	if len(c.Mounts) != 1 || strings.Join(targets, ",") != "/var/run/docker.sock,/alias/docker.sock,/run/other.sock" {
		t.Fatalf("mounts %+v socket binds %+v: want the folder shared and the three sockets apart", c.Mounts, c.Config.SocketBinds)
	}
	if err := e.Start(ctx, c.ID); err != nil {
		console, _ := os.ReadFile(e.consolePath(c.ID))
		t.Fatalf("start: %v\nconsole:\n%s", err, console)
	}
	if out, code := execOut(t, e, c.ID, "/sk/sockclient", "-get", "/run/other.sock", "/hello"); code != 0 || !strings.Contains(out, "other socket at /hello") {
		t.Fatalf("through /run/other.sock: exit %d, output %q: want the other server's answer", code, out)
	}
	for _, target := range targets[:2] {
		out, code := execOut(t, e, c.ID, "/sk/sockclient", "-get", target, "/containers/json")
		if code != 0 || !strings.Contains(out, "200 OK") || !strings.Contains(out, `"/sock-user"`) {
			t.Fatalf("through %s: exit %d, output %q: want the engine's answer listing the container", target, code, out)
		}
	}
	if out, code := execOut(t, e, c.ID, "sh", "-c", "ls -l /var/run/docker.sock"); code != 0 || !strings.HasPrefix(out, "s") {
		t.Fatalf("ls: exit %d %q: want a socket", code, out)
	}
}
