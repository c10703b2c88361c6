//go:build linux

package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// execOut runs cmd in container id and returns its stdout and exit code.
func execOut(t *testing.T, e *Engine, id string, cmd ...string) (string, int) {
	t.Helper()
	s, err := e.Exec(ctxT(t, time.Minute), id, ExecOptions{Cmd: cmd})
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, s.Stderr)
	out, _ := io.ReadAll(s.Stdout)
	code, err := s.Wait()
	if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

// startLayerWitness creates and starts a busybox container that writes /layer.txt and logs "first"
// on its first boot, and logs "again" on a later one that kept its writable layer: the witness of a
// restart that keeps the container.
func startLayerWitness(ctx context.Context, f *fixture, host string) *Container {
	f.t.Helper()
	c, err := f.e.Create(ctx, CreateOptions{Image: host + "/busybox:latest",
		Cmd: []string{"sh", "-c", `[ -e /layer.txt ] && echo again || { echo kept > /layer.txt; echo first; }; exec sleep 3600`}})
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.e.Start(ctx, c.ID); err != nil {
		f.t.Fatal(err)
	}
	waitLog(f.t, f, c.ID, "first")
	return c
}

// checkRestarted waits for a startLayerWitness container's second boot and checks that it has the
// folder added at /data (holding from-host.txt, "hi") and the writable layer of its first boot.
func checkRestarted(f *fixture, id string) {
	f.t.Helper()
	waitLog(f.t, f, id, "again")
	if out, code := execOut(f.t, f.e, id, "cat", "/data/from-host.txt", "/layer.txt"); code != 0 || out != "hi\nkept\n" {
		f.t.Errorf("the folder and the writable layer: %d %q", code, out)
	}
}

// TestAddMountLiveQEMU drops a folder on a running container in a real VM restored from a boot
// snapshot: the share is hot-plugged and mounted with no restart, and the container keeps its ID,
// writable layer and logs. A single file is bound the same way. Bad adds change nothing; removal
// unmounts it, live too. The container has a folder from its creation: one without runs on RAM
// copy-on-write, which takes no share live (TestAddMountCopyOnWriteQEMU).
func TestAddMountLiveQEMU(t *testing.T) {
	e, host, _ := qemuEngine(t)
	f := &fixture{t: t, e: e}
	ctx := ctxT(t, 10*time.Minute)
	c, err := e.Create(ctx, CreateOptions{Image: host + "/busybox:latest", Mounts: []Mount{{Source: t.TempDir(), Target: "/seed"}},
		Cmd: []string{"sh", "-c", `echo kept > /layer.txt; echo line one; echo line two; exec sleep 3600`}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx, c.ID); err != nil {
		console, _ := os.ReadFile(e.consolePath(c.ID))
		t.Fatalf("start: %v\nconsole:\n%s", err, console)
	}
	waitLog(t, f, c.ID, "line two")
	before := f.inspect(c.ID)
	if console, _ := os.ReadFile(e.consolePath(c.ID)); !strings.Contains(string(console), "restored from boot snapshot") {
		t.Skip("the VM was booted cold (no boot snapshot): no hot-plug ports to test")
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "from-host.txt"), []byte("hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	change, err := e.AddMount(ctx, c.ID, Mount{Source: dir, Target: "/data"})
	if err != nil {
		console, _ := os.ReadFile(e.consolePath(c.ID))
		t.Fatalf("AddMount: %v\nconsole:\n%s", err, console)
	}
	if change != MountLive {
		t.Errorf("AddMount on a restored QEMU VM: %s, want %s", change, MountLive)
	}
	after := f.inspect(c.ID)
	if after.ID != before.ID || after.State != StateRunning || !after.StartedAt.Equal(before.StartedAt) || after.RestartCount != before.RestartCount {
		t.Errorf("the container changed: before %s %s %v %d, after %s %s %v %d", before.ID, before.State, before.StartedAt,
			before.RestartCount, after.ID, after.State, after.StartedAt, after.RestartCount)
	}
	if len(after.Mounts) != 2 || after.Mounts[1].Target != "/data" || after.Mounts[1].Real == "" {
		t.Errorf("mounts after AddMount: %+v", after.Mounts)
	}
	var saved Container
	if b, err := os.ReadFile(filepath.Join(e.containerDir(c.ID), recordFile)); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(b, &saved); err != nil {
		t.Fatal(err)
	}
	if len(saved.Mounts) != 2 || saved.Mounts[1].Real == "" {
		t.Errorf("saved record's mounts: %+v", saved.Mounts)
	}
	if out, code := execOut(t, e, c.ID, "cat", "/data/from-host.txt", "/layer.txt"); code != 0 || out != "hi\nkept\n" {
		t.Errorf("the folder (and the writable layer) inside: %d %q", code, out)
	}
	if out, _ := f.logs(c.ID); out != "line one\nline two\n" {
		t.Errorf("logs after AddMount: %q", out)
	}
	// The workload's own mount namespace sees it too (not only exec's).
	if out, code := execOut(t, e, c.ID, "ls", "/proc/1/root/data"); code != 0 || out != "from-host.txt\n" {
		t.Errorf("the folder in the workload's view: %d %q", code, out)
	}

	// A host edit reaches an inotify watcher in the container (the live bind is watched too).
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "inotifywatch"), "../../test/cli/testdata/inotifywatch")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building inotifywatch: %v\n%s", err, out)
	}
	os.WriteFile(filepath.Join(dir, "watched.txt"), []byte("v1\n"), 0o644)
	// watch runs inotifywatch on path in the container; waitLine waits for a line with want,
	// calling poke each second meanwhile.
	watch := func(bin, path string) (waitLine func(want string, poke func()), stop func()) {
		w, err := e.Exec(ctx, c.ID, ExecOptions{Cmd: []string{bin, path}})
		if err != nil {
			t.Fatal(err)
		}
		go io.Copy(io.Discard, w.Stderr)
		lines := make(chan string, 16)
		go func() {
			sc := bufio.NewScanner(w.Stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		return func(want string, poke func()) {
			t.Helper()
			deadline := time.After(60 * time.Second)
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case l, ok := <-lines:
					if !ok {
						t.Fatalf("inotifywatch ended before %q", want)
					}
					if strings.Contains(l, want) {
						return
					}
				case <-tick.C:
					poke()
				case <-deadline:
					t.Fatalf("no %q from inotifywatch on %s in the container", want, path)
				}
			}
		}, func() { w.Close() }
	}
	waitLine, stopWatch := watch("/data/inotifywatch", "/data/watched.txt")
	waitLine("watching", func() {})
	waitLine("event", func() {
		os.WriteFile(filepath.Join(dir, "watched.txt"), []byte("v2 "+time.Now().String()+"\n"), 0o644)
	})
	stopWatch()
	if _, code := execOut(t, e, c.ID, "cp", "/data/inotifywatch", "/inotifywatch"); code != 0 {
		t.Fatal("copying inotifywatch into the container")
	}

	// Failing adds change nothing.
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct {
		m    Mount
		want error
	}{
		{Mount{Source: filepath.Join(dir, "missing"), Target: "/other"}, ErrInvalid},
		{Mount{Source: fifo, Target: "/fifo"}, ErrNotSupported},
		{Mount{Source: filepath.Join(dir, "from-host.txt"), Target: "/etc"}, ErrInvalid}, // a file onto a folder
		{Mount{Source: t.TempDir(), Target: "/layer.txt"}, ErrInvalid},                   // a folder onto a file
		{Mount{Source: t.TempDir(), Target: "/data"}, ErrConflict},
	} {
		if _, err := e.AddMount(ctx, c.ID, bad.m); !errors.Is(err, bad.want) {
			t.Errorf("AddMount(%+v): %v, want %v", bad.m, err, bad.want)
		}
	}
	if got := f.inspect(c.ID); len(got.Mounts) != 2 || !got.StartedAt.Equal(before.StartedAt) {
		t.Errorf("after failed adds: %+v", got)
	}

	change, err = e.RemoveMount(ctx, c.ID, "/data")
	if err != nil || change != MountLive {
		t.Fatalf("RemoveMount: %s %v", change, err)
	}
	if out, code := execOut(t, e, c.ID, "ls", "/data"); code != 0 || out != "" {
		t.Errorf("/data after RemoveMount: %d %q", code, out)
	}
	if got := f.inspect(c.ID); len(got.Mounts) != 1 || !got.StartedAt.Equal(before.StartedAt) || got.State != StateRunning {
		t.Errorf("after RemoveMount: %+v", got)
	}
	if _, err := e.RemoveMount(ctx, c.ID, "/data"); !errors.Is(err, ErrNotFound) {
		t.Errorf("RemoveMount of a target not mounted: %v", err)
	}
	// A single file: its folder is shared, the file alone is bound, at a path made for it.
	conf := t.TempDir()
	os.WriteFile(filepath.Join(conf, "app.conf"), []byte("v1\n"), 0o644)
	os.WriteFile(filepath.Join(conf, "sibling.txt"), []byte("not for the container\n"), 0o644)
	if change, err := e.AddMount(ctx, c.ID, Mount{Source: filepath.Join(conf, "app.conf"), Target: "/etc/app/app.conf"}); err != nil || change != MountLive {
		t.Fatalf("AddMount of a file: %s %v", change, err)
	}
	if out, code := execOut(t, e, c.ID, "sh", "-c", "cat /etc/app/app.conf; ls /etc/app"); code != 0 || out != "v1\napp.conf\n" {
		t.Errorf("the file bound in the container: %d %q", code, out)
	}
	os.WriteFile(filepath.Join(conf, "app.conf"), []byte("v2\n"), 0o644) // in place: the same file
	if out, code := execOut(t, e, c.ID, "sh", "-c", "cat /proc/1/root/etc/app/app.conf && echo from-guest >> /etc/app/app.conf"); code != 0 || out != "v2\n" {
		t.Errorf("a host edit of the bound file, seen by the workload: %d %q", code, out)
	}
	if b, _ := os.ReadFile(filepath.Join(conf, "app.conf")); string(b) != "v2\nfrom-guest\n" {
		t.Errorf("the container's write to the bound file, on the host: %q", b)
	}
	// A host edit of the file reaches an inotify watcher of it in the container; its siblings' do not matter.
	waitFile, stopFile := watch("/inotifywatch", "/etc/app/app.conf")
	waitFile("watching", func() {})
	waitFile("event", func() {
		os.WriteFile(filepath.Join(conf, "sibling.txt"), []byte("x\n"), 0o644)
		f, err := os.OpenFile(filepath.Join(conf, "app.conf"), os.O_WRONLY|os.O_APPEND, 0)
		if err == nil {
			f.WriteString("more\n")
			f.Close()
		}
	})
	stopFile()
	if got := f.inspect(c.ID); len(got.Mounts) != 2 || !got.Mounts[1].File || got.ID != before.ID || !got.StartedAt.Equal(before.StartedAt) {
		t.Errorf("after adding a file: %+v", got)
	}
	if change, err := e.RemoveMount(ctx, c.ID, "/etc/app/app.conf"); err != nil || change != MountLive {
		t.Fatalf("RemoveMount of a file: %s %v", change, err)
	}
	if out, code := execOut(t, e, c.ID, "cat", "/etc/app/app.conf"); code != 0 || out != "" {
		t.Errorf("the file's path after RemoveMount (the empty file made for it): %d %q", code, out)
	}
	// A second add in the same VM takes a fresh tag and port.
	if change, err := e.AddMount(ctx, c.ID, Mount{Source: dir, Target: "/again", ReadOnly: true}); err != nil || change != MountLive {
		t.Fatalf("second AddMount: %s %v", change, err)
	}
	if out, code := execOut(t, e, c.ID, "sh", "-c", "cat /again/from-host.txt && ! touch /again/x 2>/dev/null"); code != 0 || out != "hi\n" {
		t.Errorf("the read-only folder inside: %d %q", code, out)
	}
	one := time.Second
	if err := e.Stop(ctx, c.ID, &one); err != nil {
		t.Fatal(err)
	}
	// Stopped: the record changes, the next start mounts it.
	if change, err := e.RemoveMount(ctx, c.ID, "/again"); err != nil || change != MountNextStart {
		t.Errorf("RemoveMount of a stopped container: %s %v", change, err)
	}
}

// TestAddMountRestartQEMU adds a folder to a running container whose VM booted cold (no boot
// snapshot, so no hot-plug ports): its VM restarts, and it is still the same container, with its
// writable layer and logs.
func TestAddMountRestartQEMU(t *testing.T) {
	t.Setenv("SKIFF_NO_SNAPSHOTS", "1")
	e, host, _ := qemuEngine(t)
	f := &fixture{t: t, e: e}
	ctx := ctxT(t, 10*time.Minute)
	c := startLayerWitness(ctx, f, host)
	if plan, err := e.MountPlan(ctx, c.ID); err != nil || plan != MountRestart {
		t.Errorf("MountPlan of a cold-booted VM: %s %v", plan, err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "from-host.txt"), []byte("hi\n"), 0o644)
	if _, err := e.AddMount(ctx, c.ID, Mount{Source: filepath.Join(dir, "missing"), Target: "/data"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("AddMount of a missing source: %v", err)
	}
	change, err := e.AddMount(ctx, c.ID, Mount{Source: dir, Target: "/data"})
	if err != nil || change != MountRestart {
		t.Fatalf("AddMount: %s %v", change, err)
	}
	got := f.inspect(c.ID)
	if got.ID != c.ID || got.State != StateRunning || len(got.Mounts) != 1 {
		t.Errorf("after AddMount: %+v", got)
	}
	checkRestarted(f, c.ID)
	if out, _ := f.logs(c.ID); out != "first\nagain\n" {
		t.Errorf("logs across the restart: %q", out)
	}
	// A single file given to the stopped container is bound at its next boot (as `run -v file:…`).
	one := time.Second
	if err := e.Stop(ctx, c.ID, &one); err != nil {
		t.Fatal(err)
	}
	if change, err := e.AddMount(ctx, c.ID, Mount{Source: filepath.Join(dir, "from-host.txt"), Target: "/hi.txt", ReadOnly: true}); err != nil || change != MountNextStart {
		t.Fatalf("AddMount of a file to a stopped container: %s %v", change, err)
	}
	if err := e.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if out, code := execOut(t, e, c.ID, "sh", "-c", "cat /hi.txt && ! sh -c 'echo x >> /hi.txt' 2>/dev/null"); code != 0 || out != "hi\n" {
		t.Errorf("the read-only file bound at boot: %d %q", code, out)
	}
}

// TestAddMountCopyOnWriteQEMU adds a folder to a running container with no folders, whose VM was
// restored from a boot snapshot with its RAM copy-on-write over the snapshot's (which a share
// cannot use): the plan says restart, its VM restarts with the folder and RAM of its own, and a
// second folder then goes in live.
func TestAddMountCopyOnWriteQEMU(t *testing.T) {
	e, host, _ := qemuEngine(t)
	f := &fixture{t: t, e: e}
	ctx := ctxT(t, 10*time.Minute)
	c := startLayerWitness(ctx, f, host)
	if console, _ := os.ReadFile(e.consolePath(c.ID)); !strings.Contains(string(console), "restored from boot snapshot") {
		t.Skip("the VM was booted cold (no boot snapshot)")
	}
	if plan, err := e.MountPlan(ctx, c.ID); err != nil || plan != MountRestart {
		t.Errorf("MountPlan of a copy-on-write VM: %s %v, want %s", plan, err, MountRestart)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "from-host.txt"), []byte("hi\n"), 0o644)
	change, err := e.AddMount(ctx, c.ID, Mount{Source: dir, Target: "/data"})
	if err != nil || change != MountRestart {
		t.Fatalf("AddMount: %s %v, want %s", change, err, MountRestart)
	}
	checkRestarted(f, c.ID)
	if change, err := e.AddMount(ctx, c.ID, Mount{Source: t.TempDir(), Target: "/more"}); err != nil || change != MountLive {
		t.Errorf("a second AddMount, to the VM restarted with a folder: %s %v, want %s", change, err, MountLive)
	}
}
