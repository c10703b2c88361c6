//go:build linux

package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/images"
)

// Stop is graceful within its timeout and forced after it; Kill sends the signal asked for.
func TestEngineHostprocStopAndKill(t *testing.T) {
	f := newFixture(t)
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
}

// on-failure:2 restarts twice, then leaves the container exited.
func TestEngineHostprocRestartOnFailure(t *testing.T) {
	f := newFixture(t)
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
}

// Two containers created and started at once each run with their own hostname.
func TestEngineHostprocTwoAtOnce(t *testing.T) {
	f := newFixture(t)
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
}

// Stats of a busy loop, streamed samples, pause (stats then say ErrConflict) and resume.
func TestEngineHostprocStatsAndPause(t *testing.T) {
	f := newFixture(t)
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
	// Every sample counts the process; CPU shows in most (a 100 ms window on a loaded machine may
	// give the loop no tick at all).
	busy := 0
	for i := 0; i < 5; i++ {
		s, ok := <-stream
		if !ok || s.PIDs < 1 {
			t.Fatalf("streamed sample %d: %+v, %v", i, s, ok)
		}
		if s.CPUPercent > 0 {
			busy++
		}
	}
	if busy == 0 {
		t.Error("no streamed sample of a busy loop shows CPU use")
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
}

// Restart runs the workload anew; a pull emits progress events, then pull.
func TestEngineHostprocRestartAndPullEvents(t *testing.T) {
	f := newFixture(t)
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
}

// Bad input to Create fails with its error class and leaves no record, directory or listener behind.
func TestEngineHostprocBadInput(t *testing.T) {
	f := newFixture(t)
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
}

// Close and reopen keep records and logs, and restart an always container.
func TestEngineHostprocCloseAndReopen(t *testing.T) {
	f := newFixture(t)
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
}
