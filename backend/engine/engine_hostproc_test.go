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
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/images"
	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/backend/vm/hostproc"
	"github.com/skiff-containers/skiff/internal/testutil"
)

// The tests in this file run real containers: the real skiff-agent as a host process (backend/vm/
// hostproc) with the container's cloned rootfs as its root, images pulled from an in-process
// registry holding Debian's busybox-static. They share one registry and, where possible, one engine.

type fixture struct {
	t     *testing.T
	home  string
	store *images.Store
	ref   string // busybox image in the test registry
	e     *Engine
	log   *zap.Logger
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	hv := testHypervisor(t)
	host := testutil.Registry(t)
	f := &fixture{t: t, home: t.TempDir(), ref: host + "/busybox:latest", log: testLogger(t)}
	st, err := images.Open(filepath.Join(f.home, "images"), images.WithLogger(f.log))
	if err != nil {
		t.Fatal(err)
	}
	f.store = st
	f.e = f.open(hv)
	t.Cleanup(func() {
		if f.e != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = f.e.Close(ctx)
		}
	})
	return f
}

func (f *fixture) open(hv vm.Hypervisor) *Engine {
	f.t.Helper()
	e, err := Open(context.Background(), Config{Home: filepath.Join(f.home, "engine"), Log: f.log,
		Hypervisor: hv, Images: f.store, ClockSync: time.Hour})
	if err != nil {
		f.t.Fatal(err)
	}
	return e
}

// run creates and starts a container from the busybox image with the shell command sh.
func (f *fixture) run(o CreateOptions, sh string) *Container {
	f.t.Helper()
	o.Image = f.ref
	if sh != "" {
		o.Cmd = []string{"sh", "-c", sh}
	}
	ctx := ctxT(f.t, 2*time.Minute)
	c, err := f.e.Create(ctx, o)
	if err != nil {
		f.t.Fatalf("create: %v", err)
	}
	if err := f.e.Start(ctx, c.ID); err != nil {
		f.t.Fatalf("start: %v", err)
	}
	return c
}

func (f *fixture) wait(id string) int {
	f.t.Helper()
	code, err := f.e.Wait(ctxT(f.t, time.Minute), id)
	if err != nil {
		f.t.Fatalf("wait: %v", err)
	}
	return code
}

// logs returns stdout and stderr as strings (no follow).
func (f *fixture) logs(id string) (string, string) {
	f.t.Helper()
	ch, err := f.e.Logs(ctxT(f.t, time.Minute), id, LogOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	var out, errs strings.Builder
	for l := range ch {
		if l.Stream == "stderr" {
			errs.Write(l.Data)
		} else {
			out.Write(l.Data)
		}
	}
	return out.String(), errs.String()
}

func (f *fixture) inspect(id string) *Container {
	f.t.Helper()
	c, err := f.e.Inspect(context.Background(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func TestEngineHostproc(t *testing.T) {
	f := newFixture(t)
	events := f.e.Events(ctxT(t, 10*time.Minute))
	var evMu sync.Mutex
	var seen []Event
	go func() {
		for ev := range events {
			evMu.Lock()
			seen = append(seen, ev)
			evMu.Unlock()
		}
	}()

	t.Run("run echo and exit code", func(t *testing.T) {
		f.t = t
		c := f.run(CreateOptions{Name: "echo"}, `echo hello; echo oops >&2; exit 3`)
		if code := f.wait(c.ID); code != 3 {
			t.Fatalf("exit code %d, want 3", code)
		}
		out, errs := f.logs(c.ID)
		if out != "hello\n" || errs != "oops\n" {
			t.Errorf("logs: stdout %q stderr %q", out, errs)
		}
		got := f.inspect("echo")
		if got.State != StateExited || got.ExitCode != 3 || got.StartedAt.IsZero() || got.FinishedAt.Before(got.StartedAt) {
			t.Errorf("record after exit: %+v", got)
		}
		if len(got.Process.Args) != 3 || got.Process.Args[0] != "sh" || envGet(got.Process.Env, "HOSTNAME") != c.ShortID() {
			t.Errorf("resolved process: %+v", got.Process)
		}
		var actions []string
		eventually(t, 5*time.Second, "create, start and die events", func() bool {
			evMu.Lock()
			defer evMu.Unlock()
			actions = nil
			for _, ev := range seen {
				if ev.ID == c.ID {
					actions = append(actions, ev.Action)
				}
			}
			return len(actions) >= 3
		})
		if strings.Join(actions, ",") != "create,start,die" {
			t.Errorf("events %v, want create,start,die", actions)
		}
	})

	t.Run("missing command", func(t *testing.T) {
		f.t = t
		ctx := ctxT(t, time.Minute)
		c, err := f.e.Create(ctx, CreateOptions{Image: f.ref, Cmd: []string{"/no/such/command"}})
		if err != nil {
			t.Fatal(err)
		}
		st, err := f.e.Attach(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if err := f.e.Start(ctx, c.ID); !errors.Is(err, agentproto.ErrCommandNotFound) {
			t.Fatalf("start of a missing command: %v, want ErrCommandNotFound", err)
		}
		// An attachment waiting for that run ends (it would wait for the next start otherwise).
		ended := make(chan error, 1)
		go func() { _, err := io.ReadAll(st.Stdout); ended <- err }()
		select {
		case err := <-ended:
			if err != nil {
				t.Errorf("attach after a failed start: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("an attachment to a container whose start failed did not end")
		}
		// One made afterwards ends when the container is removed.
		st2, err := f.e.Attach(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer st2.Close()
		go func() { _, err := io.ReadAll(st2.Stdout); ended <- err }()
		defer func() {
			select {
			case <-ended:
			case <-time.After(10 * time.Second):
				t.Error("an attachment to a removed container did not end")
			}
		}()
		if got := f.inspect(c.ID); got.ExitCode != 127 || got.Error == "" || got.State != StateCreated {
			t.Errorf("record after a failed start: %s code %d error %q", got.State, got.ExitCode, got.Error)
		}
		if err := f.e.Remove(ctx, c.ID, RemoveOptions{}); err != nil {
			t.Error(err)
		}
	})

	t.Run("logs follow, tail and timestamps", func(t *testing.T) {
		f.t = t
		c := f.run(CreateOptions{}, `for i in 1 2 3 4 5; do echo line $i; sleep 0.05; done`)
		ch, err := f.e.Logs(ctxT(t, time.Minute), c.ID, LogOptions{Follow: true})
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		var prev time.Time
		for l := range ch { // ends when the container exits
			lines = append(lines, string(l.Data))
			if l.Time.Before(prev) || l.Time.IsZero() {
				t.Errorf("timestamps not increasing: %v after %v", l.Time, prev)
			}
			prev = l.Time
		}
		if strings.Join(lines, "") != "line 1\nline 2\nline 3\nline 4\nline 5\n" {
			t.Errorf("followed %q", lines)
		}
		ch, _ = f.e.Logs(ctxT(t, time.Minute), c.ID, LogOptions{Tail: 2})
		lines = nil
		for l := range ch {
			lines = append(lines, string(l.Data))
		}
		if strings.Join(lines, "") != "line 4\nline 5\n" {
			t.Errorf("tail 2: %q", lines)
		}
	})

	t.Run("exec", func(t *testing.T) {
		f.t = t
		c := f.run(CreateOptions{Env: []string{"FROM_CTR=yes"}}, `sleep 600`)
		defer f.e.Remove(context.Background(), c.ID, RemoveOptions{Force: true})
		ctx := ctxT(t, time.Minute)
		s, err := f.e.Exec(ctx, c.ID, ExecOptions{Cmd: []string{"sh", "-c", `echo "$FROM_CTR $EXTRA"; echo e >&2; exit 4`}, Env: []string{"EXTRA=1"}})
		if err != nil {
			t.Fatal(err)
		}
		var out, errb []byte
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); errb, _ = io.ReadAll(s.Stderr) }()
		out, _ = io.ReadAll(s.Stdout)
		wg.Wait()
		code, err := s.Wait()
		if err != nil || code != 4 || string(out) != "yes 1\n" || string(errb) != "e\n" {
			t.Errorf("exec: code %d err %v stdout %q stderr %q", code, err, out, errb)
		}
		// stdin, and a TTY.
		s, err = f.e.Exec(ctx, c.ID, ExecOptions{Cmd: []string{"cat"}, Stdin: true})
		if err != nil {
			t.Fatal(err)
		}
		go func() { _, _ = s.Stdin.Write([]byte("ping\n")); s.Stdin.Close() }()
		go io.Copy(io.Discard, s.Stderr)
		out, _ = io.ReadAll(s.Stdout)
		if code, _ := s.Wait(); code != 0 || string(out) != "ping\n" {
			t.Errorf("exec cat: %d %q", code, out)
		}
		s, err = f.e.Exec(ctx, c.ID, ExecOptions{Cmd: []string{"sh", "-c", "tty; stty size"}, TTY: true, Rows: 33, Cols: 101})
		if err != nil {
			t.Fatal(err)
		}
		out, _ = io.ReadAll(s.Stdout)
		if code, _ := s.Wait(); code != 0 || !strings.Contains(string(out), "/dev/pts/") || !strings.Contains(string(out), "33 101") {
			t.Errorf("exec with TTY: %d %q", code, out)
		}
		_, err = f.e.Exec(ctx, c.ID, ExecOptions{Cmd: []string{"/no/such/cmd"}})
		if !errors.Is(err, agentproto.ErrCommandNotFound) {
			t.Errorf("exec of a missing command: %v, want ErrCommandNotFound", err)
		}
	})

	t.Run("port forward to httpd", func(t *testing.T) {
		f.t = t
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
	})

	t.Run("bind mount both ways and host edits seen by an inotify watcher", func(t *testing.T) {
		f.t = t
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
	})

	t.Run("nested bind source swapped for a symlink is refused at start", func(t *testing.T) {
		f.t = t
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
	})

	t.Run("stop graceful and forced, kill", func(t *testing.T) {
		f.t = t
		graceful := f.run(CreateOptions{}, `trap 'echo got TERM; exit 0' TERM; echo up; while :; do sleep 0.1; done`)
		stubborn := f.run(CreateOptions{}, `trap '' TERM; echo up; while :; do sleep 0.1; done`)
		usr1 := f.run(CreateOptions{}, `trap 'echo got USR1; exit 7' USR1; echo up; while :; do sleep 0.1; done`)
		killed := f.run(CreateOptions{}, `echo up; while :; do sleep 0.1; done`)
		for _, c := range []*Container{graceful, stubborn, usr1, killed} {
			eventually(t, 20*time.Second, "the shell to start", func() bool { out, _ := f.logs(c.ID); return out != "" })
		}
		ctx := ctxT(t, 2*time.Minute)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			start := time.Now()
			ten := 10 * time.Second
			if err := f.e.Stop(ctx, graceful.ID, &ten); err != nil {
				t.Error(err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("graceful stop took %v", d)
			}
		}()
		go func() {
			defer wg.Done()
			start := time.Now()
			one := time.Second
			if err := f.e.Stop(ctx, stubborn.ID, &one); err != nil {
				t.Error(err)
			}
			if d := time.Since(start); d < time.Second {
				t.Errorf("forced stop took %v, before its timeout", d)
			}
		}()
		wg.Wait()
		if err := f.e.Kill(ctx, usr1.ID, "USR1"); err != nil {
			t.Fatal(err)
		}
		if err := f.e.Kill(ctx, killed.ID, ""); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			c    *Container
			code int
			log  string
		}{{graceful, 0, "got TERM"}, {stubborn, 137, ""}, {usr1, 7, "got USR1"}, {killed, 137, ""}} {
			if code := f.wait(tc.c.ID); code != tc.code {
				t.Errorf("%s: exit %d, want %d", tc.c.Name, code, tc.code)
			}
			if out, _ := f.logs(tc.c.ID); !strings.Contains(out, tc.log) {
				t.Errorf("%s: logs %q, want %q", tc.c.Name, out, tc.log)
			}
			if got := f.inspect(tc.c.ID); got.State != StateExited {
				t.Errorf("%s: state %s", tc.c.Name, got.State)
			}
		}
		if err := f.e.Kill(ctx, killed.ID, "TERM"); !errors.Is(err, ErrNotRunning) {
			t.Errorf("kill of a stopped container: %v, want ErrNotRunning", err)
		}
	})

	t.Run("restart on-failure:2", func(t *testing.T) {
		f.t = t
		c := f.run(CreateOptions{Restart: RestartPolicy{Name: "on-failure", MaximumRetryCount: 2}}, `echo run; exit 1`)
		eventually(t, time.Minute, "two restarts then exited", func() bool {
			got := f.inspect(c.ID)
			return got.State == StateExited && got.RestartCount == 2
		})
		time.Sleep(500 * time.Millisecond) // no third restart comes
		got := f.inspect(c.ID)
		out, _ := f.logs(c.ID)
		if got.State != StateExited || got.RestartCount != 2 || got.ExitCode != 1 || out != "run\nrun\nrun\n" {
			t.Errorf("after on-failure:2: state %s restarts %d code %d logs %q", got.State, got.RestartCount, got.ExitCode, out)
		}
	})

	t.Run("two containers at once", func(t *testing.T) {
		f.t = t
		var wg sync.WaitGroup
		ids := make([]string, 2)
		for i := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx := ctxT(t, 2*time.Minute)
				c, err := f.e.Create(ctx, CreateOptions{Image: f.ref, Cmd: []string{"sh", "-c", "echo I am $HOSTNAME"}, Hostname: fmt.Sprintf("twin%d", i)})
				if err != nil {
					t.Error(err)
					return
				}
				if err := f.e.Start(ctx, c.ID); err != nil {
					t.Error(err)
					return
				}
				ids[i] = c.ID
			}()
		}
		wg.Wait()
		for i, id := range ids {
			if id == "" {
				continue
			}
			if code := f.wait(id); code != 0 {
				t.Errorf("twin %d exit %d", i, code)
			}
			if out, _ := f.logs(id); out != fmt.Sprintf("I am twin%d\n", i) {
				t.Errorf("twin %d logs %q", i, out)
			}
		}
	})

	t.Run("attach right after an exit is for the next run", func(t *testing.T) {
		f.t = t
		c := f.run(CreateOptions{}, "echo again")
		defer f.e.Remove(context.Background(), c.ID, RemoveOptions{Force: true})
		for i := 0; i < 3; i++ {
			f.wait(c.ID) // the exit is announced before the run's VM is torn down
			st, err := f.e.Attach(ctxT(t, time.Minute), c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.e.Start(ctxT(t, time.Minute), c.ID); err != nil {
				t.Fatal(err)
			}
			out, _ := io.ReadAll(st.Stdout)
			st.Close()
			if string(out) != "again\n" {
				t.Fatalf("attach made right after exit %d saw %q, want the next run's output", i+1, out)
			}
		}
	})

	t.Run("attach stdin and auto-remove", func(t *testing.T) {
		f.t = t
		ctx := ctxT(t, time.Minute)
		c, err := f.e.Create(ctx, CreateOptions{Image: f.ref, Cmd: []string{"sh", "-c", "read x; echo got $x; exit 5"}, OpenStdin: true, AutoRemove: true})
		if err != nil {
			t.Fatal(err)
		}
		a, err := f.e.Attach(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		waited := make(chan int, 1)
		go func() { code, _ := f.e.Wait(ctx, c.ID); waited <- code }()
		if err := f.e.Start(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		go func() { _, _ = a.Stdin.Write([]byte("hello\n")); a.Stdin.Close() }()
		go io.Copy(io.Discard, a.Stderr)
		out, _ := io.ReadAll(a.Stdout)
		if string(out) != "got hello\n" {
			t.Errorf("attached stdout %q", out)
		}
		if code := <-waited; code != 5 {
			t.Errorf("wait: %d, want 5", code)
		}
		eventually(t, 20*time.Second, "auto-removal", func() bool {
			_, err := f.e.Inspect(ctx, c.ID)
			return errors.Is(err, ErrNotFound)
		})
		if code, err := f.e.Wait(ctx, c.ID); err != nil || code != 5 {
			t.Errorf("late wait after --rm: %d, %v", code, err)
		}
		if _, err := os.Stat(f.e.containerDir(c.ID)); !os.IsNotExist(err) {
			t.Errorf("container dir left after --rm: %v", err)
		}
	})

	t.Run("tty run with the size set before start", func(t *testing.T) {
		f.t = t
		ctx := ctxT(t, time.Minute)
		c, err := f.e.Create(ctx, CreateOptions{Image: f.ref, Cmd: []string{"sh", "-c", "stty size; tty"}, TTY: true})
		if err != nil {
			t.Fatal(err)
		}
		a, err := f.e.Attach(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		if err := a.Resize(40, 120); err != nil {
			t.Fatal(err)
		}
		if err := f.e.Start(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(a.Stdout)
		if errb, _ := io.ReadAll(a.Stderr); len(errb) != 0 {
			t.Errorf("stderr of a TTY container: %q", errb)
		}
		if !strings.HasPrefix(string(out), "40 120") || !strings.Contains(string(out), "/dev/pts/") {
			t.Errorf("TTY output %q", out)
		}
		if code := f.wait(c.ID); code != 0 {
			t.Errorf("exit %d", code)
		}
	})

	t.Run("console log", func(t *testing.T) {
		f.t = t
		c := f.run(CreateOptions{}, `echo up; sleep 1`)
		ctx := ctxT(t, time.Minute)
		rc, err := f.e.ConsoleLog(ctx, c.ID, true)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan []byte)
		go func() { b, _ := io.ReadAll(rc); done <- b }()
		f.wait(c.ID)
		var console []byte
		select {
		case console = <-done: // following ends once the container has stopped
		case <-time.After(30 * time.Second):
			t.Fatal("following the console did not end after the container stopped")
		}
		rc.Close()
		if len(console) == 0 {
			t.Error("empty console log")
		}
		if out, _ := f.logs(c.ID); out != "up\n" {
			t.Errorf("workload logs %q (the console is kept apart)", out)
		}
	})

	t.Run("stats and pause", func(t *testing.T) {
		f.t = t
		c := f.run(CreateOptions{}, `while :; do :; done`)
		defer f.e.Remove(context.Background(), c.ID, RemoveOptions{Force: true})
		ctx := ctxT(t, time.Minute)
		st, err := f.e.Stats(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if st.PIDs < 1 || st.MemoryUsage == 0 || st.MemoryLimit < st.MemoryUsage || st.CPUPercent <= 0 {
			t.Errorf("stats of a busy loop: %+v", st)
		}
		stream, err := f.e.StatsStream(ctx, c.ID, 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			if s, ok := <-stream; !ok || s.PIDs < 1 || s.CPUPercent <= 0 {
				t.Errorf("streamed sample %d: %+v, %v", i, s, ok)
			}
		}
		if err := f.e.Pause(ctx, c.ID); err != nil {
			if errors.Is(err, ErrNotSupported) || strings.Contains(err.Error(), "not supported") {
				t.Logf("pause not supported by this hypervisor: %v", err)
				return
			}
			t.Fatal(err)
		}
		if got := f.inspect(c.ID); got.State != StatePaused {
			t.Errorf("state after pause %s", got.State)
		}
		// A paused agent answers nothing: stats say so at once, and the container is not taken for dead.
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		if _, err := f.e.Stats(pctx, c.ID); !errors.Is(err, ErrConflict) {
			t.Errorf("stats of a paused container: %v, want ErrConflict", err)
		}
		pcancel()
		if err := f.e.Resume(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		if got := f.inspect(c.ID); got.State != StateRunning {
			t.Errorf("state after resume %s", got.State)
		}
		if _, err := f.e.Stats(ctx, c.ID); err != nil {
			t.Errorf("stats after resume: %v", err)
		}
	})

	t.Run("restart and pull events", func(t *testing.T) {
		f.t = t
		c := f.run(CreateOptions{}, `echo started; exec sleep 600`)
		defer f.e.Remove(context.Background(), c.ID, RemoveOptions{Force: true})
		waitLog(t, f, c.ID, "started")
		first := f.inspect(c.ID).StartedAt
		one := 500 * time.Millisecond
		if err := f.e.Restart(ctxT(t, time.Minute), c.ID, &one); err != nil {
			t.Fatal(err)
		}
		got := f.inspect(c.ID)
		if got.State != StateRunning || !got.StartedAt.After(first) || got.ManuallyStopped {
			t.Errorf("after restart: %s started %v (was %v) manual %v", got.State, got.StartedAt, first, got.ManuallyStopped)
		}
		waitLog(t, f, c.ID, "started\nstarted\n")

		ctx := ctxT(t, time.Minute)
		evs := f.e.Events(ctx)
		ml := strings.TrimSuffix(f.ref, "busybox:latest") + "multilayer:latest"
		img, err := f.e.Pull(ctx, ml, images.PullOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var progress int
		for ev := range evs {
			if ev.Type == "image" && ev.Action == "pull-progress" && ev.Name == ml {
				progress++
			}
			if ev.Type == "image" && ev.Action == "pull" {
				if ev.ID != img.ID || ev.Name != ml {
					t.Errorf("pull event %+v", ev)
				}
				break
			}
		}
		if progress == 0 {
			t.Error("no pull-progress events")
		}
	})

	t.Run("bad input leaves nothing behind", func(t *testing.T) {
		f.t = t
		ctx := ctxT(t, time.Minute)
		before, _ := f.e.List(ctx, ListOptions{All: true})
		dirsBefore, _ := os.ReadDir(filepath.Join(f.e.Home(), "containers"))
		taken, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer taken.Close()
		takenPort := taken.Addr().(*net.TCPAddr).Port
		free := freePort(t)
		f.run(CreateOptions{Name: "dup"}, "true")
		before = append(before, Container{})
		dirsBefore = append(dirsBefore, nil)
		for _, tc := range []struct {
			name string
			o    CreateOptions
			want error
		}{
			{"malformed port", CreateOptions{Ports: []PortMapping{{HostPort: free, ContainerPort: 0}}}, ErrInvalid},
			{"port taken", CreateOptions{Ports: []PortMapping{{HostPort: takenPort, ContainerPort: 80}}}, ErrConflict},
			{"udp port taken", CreateOptions{Ports: []PortMapping{{HostPort: takenUDPPort(t), ContainerPort: 53, Proto: "udp"}}}, ErrConflict},
			{"missing image", CreateOptions{Image: strings.TrimSuffix(f.ref, "busybox:latest") + "nope:latest"}, images.ErrNotFound},
			{"missing -v source", CreateOptions{Mounts: []Mount{{Source: "/no/such/dir", Target: "/data"}}}, ErrInvalid},
			{"duplicate name", CreateOptions{Name: "dup"}, ErrConflict},
			{"nonsense memory", CreateOptions{Memory: 12}, ErrInvalid},
			{"bad restart", CreateOptions{Restart: RestartPolicy{Name: "sometimes"}}, ErrInvalid},
			{"rm with restart", CreateOptions{AutoRemove: true, Restart: RestartPolicy{Name: "always"}}, ErrInvalid},
		} {
			o := tc.o
			if o.Image == "" {
				o.Image = f.ref
			}
			o.Cmd = []string{"true"}
			_, err := f.e.Create(ctx, o)
			if !errors.Is(err, tc.want) {
				t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
			}
			if err != nil && len(err.Error()) < 20 {
				t.Errorf("%s: message too terse to help: %q", tc.name, err)
			}
		}
		after, _ := f.e.List(ctx, ListOptions{All: true})
		dirsAfter, _ := os.ReadDir(filepath.Join(f.e.Home(), "containers"))
		if len(after) != len(before) || len(dirsAfter) != len(dirsBefore) {
			t.Errorf("bad input left containers behind: %d → %d records, %d → %d dirs", len(before), len(after), len(dirsBefore), len(dirsAfter))
		}
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", free), time.Second); err == nil {
			c.Close()
			t.Error("a listener was left on the host port of a refused container")
		}
	})

	t.Run("close and reopen keeps records and logs and restarts always", func(t *testing.T) {
		f.t = t
		always := f.run(CreateOptions{Name: "keeper", Restart: RestartPolicy{Name: "always"}},
			`trap 'exit 0' TERM; echo up; while :; do sleep 0.1; done`)
		plain := f.run(CreateOptions{Name: "once"}, `echo once`)
		f.wait(plain.ID)
		waitLog(t, f, always.ID, "up")
		ctx := ctxT(t, time.Minute)
		if err := f.e.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := f.e.List(ctx, ListOptions{All: true}); !errors.Is(err, ErrClosed) {
			t.Errorf("List after Close: %v, want ErrClosed", err)
		}
		f.e = f.open(testHypervisor(t))
		eventually(t, 30*time.Second, "the always container to run again after reopening", func() bool {
			return f.inspect(always.ID).State == StateRunning
		})
		waitLog(t, f, always.ID, "up\nup\n")
		if out, _ := f.logs(plain.ID); out != "once\n" {
			t.Errorf("logs after reopen: %q", out)
		}
		if got := f.inspect("once"); got.State != StateExited || got.ExitCode != 0 {
			t.Errorf("exited container after reopen: %s %d", got.State, got.ExitCode)
		}
	})
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// testHypervisor is the host-process backend running the embedded agent (`make agent`); it skips the
// test when the agent is not built or the test does not run as root (host mode needs it).
func testHypervisor(t testing.TB) vm.Hypervisor {
	if os.Geteuid() != 0 {
		if t == nil {
			panic("not root")
		}
		t.Skip("the agent in host mode needs root")
	}
	hv, err := hostproc.New(hostproc.Options{})
	if err != nil {
		if t == nil {
			panic(err)
		}
		t.Skipf("no embedded agent (run `make agent`, which `make setup` does): %v", err)
	}
	return hv
}

// waitLog waits until the container's stdout contains want.
func waitLog(t testing.TB, f *fixture, id, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ := f.logs(id)
		if strings.Contains(out, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %q in the container's output; got %q", want, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testTools holds the static helper programs built from testdata/<name> (host arch), once per
// test binary: Debian's busybox-static has no inotifyd and its nc has no -u.
var testTools struct {
	sync.Mutex
	paths map[string]string // name → built binary
}

// installTestTool builds testdata/<name> once and copies it to <rootfs>/<name>.
func installTestTool(t testing.TB, rootfs, name string) {
	t.Helper()
	testTools.Lock()
	defer testTools.Unlock()
	if testTools.paths[name] == "" {
		out := filepath.Join(os.TempDir(), fmt.Sprintf("skiff-%s-%d", name, os.Getpid()))
		cmd := exec.Command("go", "build", "-o", out, "./testdata/"+name)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building testdata/%s: %v\n%s", name, err, b)
		}
		if testTools.paths == nil {
			testTools.paths = map[string]string{}
		}
		testTools.paths[name] = out
	}
	b, err := os.ReadFile(testTools.paths[name])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, name), b, 0o755); err != nil {
		t.Fatal(err)
	}
}
