//go:build linux

package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A port forward reaches httpd in the container; rm -f closes it and removes the writable disk.
func TestEngineHostprocPortForward(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t, 2*time.Minute)
	c, err := f.e.Create(ctx, CreateOptions{Image: f.ref, Cmd: []string{"httpd", "-f", "-p", "8080", "-h", "/www"},
		Ports: []PortMapping{{ContainerPort: 8080}}})
	if err != nil {
		t.Fatal(err)
	}
	// The writable rootfs is the container's own: put the page there before starting.
	if err := os.MkdirAll(filepath.Join(rootOf(t, c), "www"), 0o755); err != nil {
		t.Fatal(err)
	}
	page := strings.Repeat("skiff port forward\n", 5000)
	if err := os.WriteFile(filepath.Join(rootOf(t, c), "www", "index.html"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.e.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	got := f.inspect(c.ID)
	if len(got.Ports) != 1 || got.Ports[0].HostPort == 0 || got.Ports[0].HostIP != "127.0.0.1" {
		t.Fatalf("ports %+v", got.Ports)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/index.html", got.Ports[0].HostPort)
	var body []byte
	eventually(t, 20*time.Second, "httpd to answer", func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ = io.ReadAll(resp.Body)
		return resp.StatusCode == 200
	})
	if string(body) != page {
		t.Errorf("body: %d bytes, want %d", len(body), len(page))
	}
	if err := f.e.Remove(ctx, c.ID, RemoveOptions{}); !errors.Is(err, ErrConflict) {
		t.Errorf("remove of a running container without force: %v, want ErrConflict", err)
	}
	if err := f.e.Remove(ctx, c.ID, RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", got.Ports[0].HostPort), time.Second); err == nil {
		t.Error("the port still accepts connections after rm -f")
	}
	if _, err := os.Stat(got.UpperDisk); !os.IsNotExist(err) {
		t.Errorf("writable disk left after remove: %v", err)
	}
}

// A bind mount works both ways, and host edits reach an inotify watcher in the container.
func TestEngineHostprocBindMountInotify(t *testing.T) {
	f := newFixture(t)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "from-host.txt"), []byte("host says hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 2*time.Minute)
	c, err := f.e.Create(ctx, CreateOptions{Image: f.ref, Mounts: []Mount{{Source: host, Target: "/data"}},
		Cmd: []string{"sh", "-c", `cat /data/from-host.txt; echo guest wrote > /data/from-guest.txt; exec /inotifywatch /data`}})
	if err != nil {
		t.Fatal(err)
	}
	defer f.e.Remove(context.Background(), c.ID, RemoveOptions{Force: true})
	installTestTool(t, rootOf(t, c), "inotifywatch")
	if err := f.e.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	waitLog(t, f, c.ID, "watching /data")
	if b, err := os.ReadFile(filepath.Join(host, "from-guest.txt")); err != nil || string(b) != "guest wrote\n" {
		t.Errorf("guest write seen on the host: %q, %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(host, "edited.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The engine's touch shows as a metadata change (ATTRIB) in the container, which a plain host
	// write never produces (in a VM, virtiofs delivers no event at all).
	waitLog(t, f, c.ID, "ATTRIB edited.txt")
	out, _ := f.logs(c.ID)
	if !strings.HasPrefix(out, "host says hi\n") {
		t.Errorf("host file read in the container: %q", out)
	}
}

// A nested bind source swapped for a symlink between runs is refused at start.
func TestEngineHostprocNestedBindSymlink(t *testing.T) {
	f := newFixture(t)
	outer, other, links := t.TempDir(), t.TempDir(), t.TempDir()
	inner := filepath.Join(outer, "inner")
	legit := filepath.Join(links, "legit") // a source given through a symlink the user made
	if err := os.Mkdir(inner, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, legit); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(other, "via-legit.txt"), []byte("through the user's link\n"), 0o644)
	c := f.run(CreateOptions{Mounts: []Mount{{Source: outer, Target: "/a"}, {Source: inner, Target: "/b"},
		{Source: legit, Target: "/c"}}}, `cat /b/secret.txt 2>/dev/null; cat /c/via-legit.txt; echo run`)
	if code := f.wait(c.ID); code != 0 {
		t.Fatalf("first run exit %d", code)
	}
	if out, _ := f.logs(c.ID); out != "through the user's link\nrun\n" {
		t.Fatalf("first run: %q", out)
	}
	if got := f.inspect(c.ID).Mounts; got[1].Real != inner || got[2].Real != other || got[2].Source != legit {
		t.Errorf("pinned sources: %+v", got)
	}
	// What a guest can do to the folder it sees at /a between runs: its nested source becomes a
	// symbolic link to another host directory.
	os.WriteFile(filepath.Join(other, "secret.txt"), []byte("host secret\n"), 0o644)
	if err := os.Remove(inner); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, inner); err != nil {
		t.Fatal(err)
	}
	err := f.e.Start(ctxT(t, time.Minute), c.ID)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), inner) || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("start after the swap: %v, want ErrInvalid naming %s and the symbolic link", err, inner)
	}
	if st := f.inspect(c.ID).State; st == StateRunning {
		t.Errorf("state %s after the refused start", st)
	}
	// Nor does a recreate with the same mounts (the app's AddMount) pin the new target.
	if _, err := f.e.Create(ctxT(t, time.Minute), CreateOptions{Image: f.ref, Mounts: f.inspect(c.ID).Mounts}); !errors.Is(err, ErrInvalid) {
		t.Errorf("recreate after the swap: %v, want ErrInvalid", err)
	}
	if out, _ := f.logs(c.ID); strings.Contains(out, "host secret") {
		t.Errorf("the other directory was exposed: %q", out)
	}
	f.e.Remove(context.Background(), c.ID, RemoveOptions{Force: true})
}
