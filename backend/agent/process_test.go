//go:build linux

package agent_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
)

func TestWorkloadStreamsAndExitCodes(t *testing.T) {
	a := startAgent(t)
	ctx := ctxT(t)

	t.Run("stdout, stderr and exit status", func(t *testing.T) {
		p, err := a.c.Run(ctx, agentproto.ProcessSpec{Args: []string{"sh", "-c", "echo out; echo err >&2; exit 7"}})
		if err != nil {
			t.Fatal(err)
		}
		r := collect(p)
		if r.err != nil || r.stdout != "out\n" || r.stderr != "err\n" || r.status != (agentproto.ExitStatus{Code: 7}) {
			t.Fatalf("got stdout %q stderr %q status %+v err %v", r.stdout, r.stderr, r.status, r.err)
		}
	})

	t.Run("cat echoes stdin until EOF", func(t *testing.T) {
		p, err := a.c.Run(ctx, agentproto.ProcessSpec{Args: []string{"cat"}, Stdin: true})
		if err != nil {
			t.Fatal(err)
		}
		want := strings.Repeat("hello agent\n", 50000) // 600 KB: more than a pipe holds
		go func() {
			io.WriteString(p.Stdin(), want)
			p.Stdin().Close()
		}()
		r := collect(p)
		if r.err != nil || r.stdout != want || r.status.Code != 0 {
			t.Fatalf("got %d bytes (want %d), status %+v, err %v", len(r.stdout), len(want), r.status, r.err)
		}
	})

	t.Run("tty workload", func(t *testing.T) {
		p, err := a.c.Run(ctx, agentproto.ProcessSpec{Args: []string{"sh", "-c", "tty; stty size; read x; stty size; exit 4"},
			TTY: true, Rows: 30, Cols: 90, Stdin: true})
		if err != nil {
			t.Fatal(err)
		}
		out := newLineReader(p.Stdout())
		out.waitFor(t, "/dev/pts/0")
		out.waitFor(t, "30 90")
		p.Resize(50, 132)
		io.WriteString(p.Stdin(), "go\n")
		out.waitFor(t, "50 132")
		if st, err := p.Wait(); err != nil || st.Code != 4 {
			t.Fatalf("status %+v err %v", st, err)
		}
	})

	t.Run("kill -9 gives 137", func(t *testing.T) {
		p, lines := a.runWorkload(t, agentproto.ProcessSpec{Args: []string{"sh", "-c", "echo ready; while :; do sleep 1; done"}})
		lines.waitFor(t, "ready")
		if err := a.c.Signal(ctx, 9); err != nil {
			t.Fatal(err)
		}
		st, err := p.Wait()
		if err != nil || st != (agentproto.ExitStatus{Code: 137, Signal: 9}) {
			t.Fatalf("status %+v err %v", st, err)
		}
	})

	t.Run("trap on TERM sees the signal", func(t *testing.T) {
		p, lines := a.runWorkload(t, agentproto.ProcessSpec{Args: []string{"sh", "-c",
			`trap 'echo got TERM; exit 3' TERM; echo ready; while :; do sleep 0.1; done`}})
		lines.waitFor(t, "ready")
		if err := p.Signal(15); err != nil {
			t.Fatal(err)
		}
		lines.waitFor(t, "got TERM")
		st, err := p.Wait()
		if err != nil || st.Code != 3 {
			t.Fatalf("status %+v err %v", st, err)
		}
	})

	t.Run("missing and non-executable commands", func(t *testing.T) {
		if _, err := a.c.Run(ctx, agentproto.ProcessSpec{Args: []string{"no-such-command"}}); !errors.Is(err, agentproto.ErrCommandNotFound) {
			t.Errorf("run missing: %v, want ErrCommandNotFound", err)
		}
		if err := os.WriteFile(filepath.Join(a.root, "bin/notexec"), []byte("#!/bin/sh\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := a.c.Run(ctx, agentproto.ProcessSpec{Args: []string{"/bin/notexec"}}); !errors.Is(err, agentproto.ErrCommandNotExecutable) {
			t.Errorf("run non-executable: %v, want ErrCommandNotExecutable", err)
		}
		if err := a.c.Signal(ctx, 15); !errors.Is(err, agentproto.ErrNotRunning) {
			t.Errorf("signal without workload: %v, want ErrNotRunning", err)
		}
	})

	t.Run("one workload at a time", func(t *testing.T) {
		type res struct {
			p   *agentproto.Process
			err error
		}
		results := make(chan res, 4)
		for range 4 {
			go func() {
				p, err := a.c.Run(ctx, agentproto.ProcessSpec{Args: []string{"sleep", "1000"}})
				results <- res{p, err}
			}()
		}
		var started []*agentproto.Process
		for range 4 {
			r := <-results
			if r.err == nil {
				started = append(started, r.p)
			} else if !errors.Is(r.err, agentproto.ErrAlreadyRunning) {
				t.Errorf("concurrent run: %v", r.err)
			}
		}
		if len(started) != 1 {
			t.Fatalf("%d workloads started at once", len(started))
		}
		a.c.Signal(ctx, 9)
		if st, _ := started[0].Wait(); st.Code != 137 {
			t.Errorf("status %+v", st)
		}
	})
}

func TestExecJoinsWorkload(t *testing.T) {
	a := startAgent(t)
	ctx := ctxT(t)
	p, lines := a.runWorkload(t, agentproto.ProcessSpec{Args: []string{"sh", "-c", "echo ready; exec sleep 1000"}, Hostname: "box1"})
	lines.waitFor(t, "ready")

	t.Run("same PID namespace and root", func(t *testing.T) {
		var r result
		for i := 0; i < 100; i++ { // "ready" comes just before the shell execs sleep
			if r = a.exec(agentproto.ProcessSpec{Args: []string{"cat", "/proc/1/cmdline"}}); r.stdout == "sleep\x001000\x00" {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if r.err != nil || r.stdout != "sleep\x001000\x00" {
			t.Fatalf("/proc/1/cmdline = %q, err %v", r.stdout, r.err)
		}
		// Every namespace of the workload (mount included: not a mere chroot).
		r = a.sh(`for ns in mnt pid uts ipc; do [ "$(readlink /proc/self/ns/$ns)" = "$(readlink /proc/1/ns/$ns)" ] && echo same $ns; done`)
		if r.stdout != "same mnt\nsame pid\nsame uts\nsame ipc\n" {
			t.Fatalf("namespaces: %q %q", r.stdout, r.stderr)
		}
		if err := os.WriteFile(filepath.Join(a.root, "tmp/from-host"), []byte("host file"), 0o644); err != nil {
			t.Fatal(err)
		}
		r = a.sh("cat /tmp/from-host; hostname; echo $$; ls /proc | grep -c '^[0-9]'")
		want := "host file" + "box1\n"
		if r.err != nil || !strings.HasPrefix(r.stdout, want) {
			t.Fatalf("got %q, want prefix %q (err %v)", r.stdout, want, r.err)
		}
		f := strings.Fields(strings.TrimPrefix(r.stdout, want))
		if len(f) != 2 || f[0] == "1" || f[1] == "" {
			t.Fatalf("pid/process count lines %q", f)
		}
		// A PID namespace of its own: the container sees a handful of processes, not the host's.
		var n int
		if fmt.Sscan(f[1], &n); n > 5 {
			t.Errorf("container sees %d processes", n)
		}
	})

	t.Run("named user, env and cwd", func(t *testing.T) {
		r := a.exec(agentproto.ProcessSpec{
			Args: []string{"sh", "-c", `id; echo "$FOO $HOME"; pwd; echo $PATH`},
			User: "app", Env: []string{"FOO=bar"}, Cwd: "/work/new/dir",
		})
		want := "uid=1000(app) gid=1000(app) groups=50(staff),1000(app)\nbar /home/app\n/work/new/dir\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
		if r.err != nil || r.stdout != want {
			t.Fatalf("got %q (stderr %q, err %v), want %q", r.stdout, r.stderr, r.err, want)
		}
		r = a.exec(agentproto.ProcessSpec{Args: []string{"id"}, User: "1000:50"})
		if r.stdout != "uid=1000(app) gid=50(staff) groups=50(staff)\n" {
			t.Errorf("1000:50: %q", r.stdout)
		}
		r = a.exec(agentproto.ProcessSpec{Args: []string{"id", "-u"}, User: "4242"})
		if r.stdout != "4242\n" {
			t.Errorf("numeric user without passwd entry: %q %v", r.stdout, r.err)
		}
		if r := a.exec(agentproto.ProcessSpec{Args: []string{"id"}, User: "nosuchuser"}); !errors.Is(r.err, agentproto.ErrBadRequest) {
			t.Errorf("unknown user: %v", r.err)
		}
	})

	t.Run("own exit code and error classes", func(t *testing.T) {
		if r := a.sh("exit 5"); r.err != nil || r.status.Code != 5 {
			t.Fatalf("status %+v err %v", r.status, r.err)
		}
		if r := a.exec(agentproto.ProcessSpec{Args: []string{"nope"}}); !errors.Is(r.err, agentproto.ErrCommandNotFound) {
			t.Errorf("missing: %v", r.err)
		}
		if err := os.WriteFile(filepath.Join(a.root, "bin/notexec"), []byte("#!/bin/sh\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if r := a.exec(agentproto.ProcessSpec{Args: []string{"notexec"}}); !errors.Is(r.err, agentproto.ErrCommandNotExecutable) {
			t.Errorf("not executable: %v", r.err)
		}
	})

	t.Run("many concurrent streams", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := a.sh(fmt.Sprintf("echo %d; exit %d", i, i))
				if r.err != nil || r.stdout != fmt.Sprintf("%d\n", i) || r.status.Code != i {
					errs <- fmt.Errorf("exec %d: %q %+v %v", i, r.stdout, r.status, r.err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})

	t.Run("tty with resize", func(t *testing.T) {
		ep, err := a.c.Exec(ctx, agentproto.ProcessSpec{Args: []string{"sh", "-c", "stty size; read x; stty size; tty"},
			TTY: true, Rows: 24, Cols: 80, Stdin: true})
		if err != nil {
			t.Fatal(err)
		}
		out := newLineReader(ep.Stdout())
		out.waitFor(t, "24 80")
		if err := ep.Resize(40, 100); err != nil {
			t.Fatal(err)
		}
		io.WriteString(ep.Stdin(), "\n")
		out.waitFor(t, "40 100")
		out.waitFor(t, "/dev/pts/0")
		if st, err := ep.Wait(); err != nil || st.Code != 0 {
			t.Fatalf("status %+v err %v", st, err)
		}
		if b, _ := io.ReadAll(ep.Stderr()); len(b) != 0 {
			t.Errorf("tty stderr not empty: %q", b)
		}
	})

	t.Run("signal an exec", func(t *testing.T) {
		ep, err := a.c.Exec(ctx, agentproto.ProcessSpec{Args: []string{"sh", "-c", "echo up; sleep 1000"}})
		if err != nil {
			t.Fatal(err)
		}
		out := newLineReader(ep.Stdout())
		out.waitFor(t, "up")
		ep.Signal(9)
		if st, err := ep.Wait(); err != nil || st.Code != 137 {
			t.Fatalf("status %+v err %v", st, err)
		}
	})

	// The workload was untouched by all of the above.
	select {
	case <-p.Done():
		t.Fatal("workload ended early")
	default:
	}
	a.c.Signal(ctx, 9)
	if st, _ := p.Wait(); st.Code != 137 {
		t.Errorf("workload status %+v", st)
	}
}

// TestZombiesReaped: orphans inside the container are adopted and reaped
// by its PID 1; exec'd processes whose namespace dies are reaped by the
// agent (a subreaper), and nothing is left behind.
func TestZombiesReaped(t *testing.T) {
	a := startAgent(t)
	ctx := ctxT(t)
	p, lines := a.runWorkload(t, agentproto.ProcessSpec{Args: []string{"sh", "-c", "echo ready; while :; do sleep 0.1; done"}})
	lines.waitFor(t, "ready")
	// Grandchildren orphaned by the exec'd shell, which exits at once.
	if r := a.sh("(sleep 0.2 &); (sleep 0.3 &); sleep 0.1 & exit 0"); r.err != nil {
		t.Fatal(r.err)
	}
	time.Sleep(800 * time.Millisecond)
	r := a.sh("ps -o pid,stat,comm")
	if r.err != nil {
		t.Fatal(r.err)
	}
	for _, line := range strings.Split(r.stdout, "\n")[1:] {
		if f := strings.Fields(line); len(f) >= 2 && strings.HasPrefix(f[1], "Z") {
			t.Errorf("zombie in the container: %q\n%s", line, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "sleep 0.") {
		t.Errorf("orphans still running:\n%s", r.stdout)
	}

	// An exec'd tree, abandoned by its client; then the workload dies.
	ep, err := a.c.Exec(ctx, agentproto.ProcessSpec{Args: []string{"sh", "-c", "sleep 1000 & sleep 1000 & echo up; wait"}})
	if err != nil {
		t.Fatal(err)
	}
	newLineReader(ep.Stdout()).waitFor(t, "up")
	ep2, err := a.c.Exec(ctx, agentproto.ProcessSpec{Args: []string{"sleep", "1000"}})
	if err != nil {
		t.Fatal(err)
	}
	ep2.Close()
	a.c.Signal(ctx, 9)
	if st, _ := p.Wait(); st.Code != 137 {
		t.Fatalf("workload status %+v", st)
	}
	if st, err := ep.Wait(); err != nil || st.Code != 137 {
		t.Errorf("exec in a dead namespace: %+v %v", st, err)
	}
	agentPID := agentChildPID(t, a)
	deadline := time.Now().Add(5 * time.Second)
	for {
		kids := childrenOf(agentPID)
		if len(kids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent still has children (zombies?): %v", kids)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// agentChildPID is the pid of the real agent: the host-mode binary
// re-executes itself into a mount namespace.
func agentChildPID(t *testing.T, a *testAgent) int {
	kids := childrenOf(a.cmd.Process.Pid)
	if len(kids) != 1 {
		t.Fatalf("agent wrapper has children %v", kids)
	}
	var pid int
	fmt.Sscan(strings.Fields(kids[0])[0], &pid)
	return pid
}

// childrenOf lists "pid state" of the children of pid.
func childrenOf(pid int) []string {
	var out []string
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, task := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		for _, c := range strings.Fields(string(b)) {
			stat, _ := os.ReadFile("/proc/" + c + "/stat")
			state := "?"
			if i := strings.LastIndexByte(string(stat), ')'); i > 0 && len(stat) > i+2 {
				state = string(stat[i+2])
			}
			out = append(out, c+" "+state)
		}
	}
	return out
}
