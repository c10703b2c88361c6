//go:build linux

package engine

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
)

// A run's output, exit code, record, and its create, start and die events.
func TestEngineHostprocEcho(t *testing.T) {
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
}

// A start of a missing command fails with ErrCommandNotFound and ends the attachments waiting for it.
func TestEngineHostprocMissingCommand(t *testing.T) {
	f := newFixture(t)
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
}

// Logs follow until the exit, timestamps increasing; Tail keeps the last lines.
func TestEngineHostprocLogsFollowTail(t *testing.T) {
	f := newFixture(t)
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
}

// Exec with its own env and exit code, with stdin, with a TTY; a missing command is ErrCommandNotFound.
func TestEngineHostprocExec(t *testing.T) {
	f := newFixture(t)
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
}

// A TTY run gets the size set before its start.
func TestEngineHostprocTTYSize(t *testing.T) {
	f := newFixture(t)
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
}

// Following the console log ends once the container stopped; the workload's logs are kept apart.
func TestEngineHostprocConsoleLog(t *testing.T) {
	f := newFixture(t)
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
}

// An attach made right after an exit gets the next run's output.
func TestEngineHostprocAttachAfterExit(t *testing.T) {
	f := newFixture(t)
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
}

// Attached stdin reaches the workload; AutoRemove removes the container and a late Wait still gets its code.
func TestEngineHostprocAttachStdinAutoRemove(t *testing.T) {
	f := newFixture(t)
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
}
