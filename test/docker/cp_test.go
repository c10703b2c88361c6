package docker_test

import (
	"archive/tar"
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// docker cp both ways against a running container, and a hostile archive PUT straight at the API.
func TestCp(t *testing.T) {
	need(t)
	loadBusybox(t)
	dockerOK(t, "run", "-d", "--name", "cpbox", "busybox", "sleep", "600")
	defer docker(t, "rm", "-f", "cpbox")
	dir := t.TempDir()

	// host → container, then read it inside.
	src := filepath.Join(dir, "in.txt")
	os.WriteFile(src, []byte("from the host\n"), 0o640)
	dockerOK(t, "cp", src, "cpbox:/tmp/in.txt")
	if out := dockerOK(t, "exec", "cpbox", "cat", "/tmp/in.txt"); out != "from the host\n" {
		t.Errorf("cat of the copied file: %q", out)
	}
	// a host directory into an existing container directory.
	os.MkdirAll(filepath.Join(dir, "tree/sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "tree/sub/f"), []byte("deep\n"), 0o644)
	dockerOK(t, "cp", filepath.Join(dir, "tree"), "cpbox:/tmp/")
	if out := dockerOK(t, "exec", "cpbox", "cat", "/tmp/tree/sub/f"); out != "deep\n" {
		t.Errorf("cat of the copied tree: %q", out)
	}

	// container → host: a file and a directory made inside.
	dockerOK(t, "exec", "cpbox", "sh", "-c", "mkdir -p /out/d && echo one > /out/d/a && echo two > /out/b")
	dockerOK(t, "cp", "cpbox:/out/b", filepath.Join(dir, "b"))
	if b, err := os.ReadFile(filepath.Join(dir, "b")); err != nil || string(b) != "two\n" {
		t.Errorf("copied-out file: %q, %v", b, err)
	}
	dockerOK(t, "cp", "cpbox:/out", filepath.Join(dir, "outdir"))
	if b, err := os.ReadFile(filepath.Join(dir, "outdir/d/a")); err != nil || string(b) != "one\n" {
		t.Errorf("copied-out directory: %q, %v", b, err)
	}
	// A symlink: copied as the link, or (-L) as what it points to, resolved in the container.
	dockerOK(t, "exec", "cpbox", "ln", "-s", "/out/b", "/out/lnk")
	dockerOK(t, "cp", "cpbox:/out/lnk", filepath.Join(dir, "lnk"))
	if l, err := os.Readlink(filepath.Join(dir, "lnk")); err != nil || l != "/out/b" {
		t.Errorf("copied-out symlink: %q, %v", l, err)
	}
	dockerOK(t, "cp", "-L", "cpbox:/out/lnk", filepath.Join(dir, "followed"))
	if b, err := os.ReadFile(filepath.Join(dir, "followed")); err != nil || string(b) != "two\n" {
		t.Errorf("docker cp -L of a symlink: %q, %v", b, err)
	}
	if r := docker(t, "cp", "cpbox:/nonexistent", dir); r.code == 0 || !strings.Contains(r.stderr, "Could not find the file /nonexistent") {
		t.Errorf("docker cp of a missing path: %s", r)
	}

	// A hostile archive: refused with 400, nothing written.
	victim := t.TempDir()
	for what, ents := range map[string][]tar.Header{
		"../ escape": {{Name: "ok", Typeflag: tar.TypeReg, Mode: 0o644},
			{Name: strings.Repeat("../", 20) + strings.TrimPrefix(victim, "/") + "/pwn", Typeflag: tar.TypeReg, Mode: 0o644}},
		"symlink escape": {{Name: "ok", Typeflag: tar.TypeReg, Mode: 0o644},
			{Name: "esc", Typeflag: tar.TypeSymlink, Linkname: victim}, {Name: "esc/pwn", Typeflag: tar.TypeReg, Mode: 0o644}},
	} {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, h := range ents {
			tw.WriteHeader(&h)
		}
		tw.Close()
		code, body := apiDo(t, "PUT", "/v1.50/containers/cpbox/archive?path=/tmp", &b)
		if code != http.StatusBadRequest {
			t.Errorf("%s: PUT archive answered %d %s, want 400", what, code, body)
		}
		if _, err := os.Lstat(filepath.Join(victim, "pwn")); err == nil {
			t.Fatalf("%s: the archive wrote outside the container", what)
		}
		if r := docker(t, "exec", "cpbox", "ls", "/tmp/ok"); r.code == 0 {
			t.Errorf("%s: the refused archive wrote part of itself", what)
		}
	}
}

// apiDo sends one request to the daemon's Docker socket.
func apiDo(t *testing.T, method, path string, body *bytes.Buffer) (int, string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", filepath.Join(env.home, "docker.sock"))
	}}}
	req, _ := http.NewRequest(method, "http://docker"+path, body)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	out.ReadFrom(resp.Body)
	return resp.StatusCode, out.String()
}
