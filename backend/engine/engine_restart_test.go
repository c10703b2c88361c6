package engine

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/images"
	"github.com/skiff-containers/skiff/backend/vm/vmtest"
	"github.com/skiff-containers/skiff/internal/testutil"
)

// TestEngineRestartAfterKill runs an engine in a child process (this test binary), SIGKILLs it with
// containers running, and opens the data dir again: records and logs are kept, containers that were
// running are marked exited, and the restart policy brings the "always" one back. The machines are
// in-memory (vmtest): they end with the engine's process, as a VM ends with its hypervisor's. No
// root, no QEMU: it runs on every OS.
func TestEngineRestartAfterKill(t *testing.T) {
	host := testutil.Registry(t)
	home := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SKIFF_ENGINE_CHILD="+home, "SKIFF_ENGINE_CHILD_IMAGE="+host+"/busybox:latest")
	cmd.Stderr = os.Stderr
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		name, id, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		if name == "ready" {
			break
		}
		ids[name] = id
	}
	if len(ids) != 3 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child engine did not get ready: %v", ids)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()

	st, err := images.Open(filepath.Join(home, "images"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := Open(ctxT(t, time.Minute), Config{Home: filepath.Join(home, "engine"), Hypervisor: vmtest.New(), Images: st, Log: testLogger(t)})
	if err != nil {
		t.Fatalf("reopening after the engine was killed: %v", err)
	}
	f := memFixture{t: t, e: e}
	defer e.Close(context.Background())
	defer e.Remove(context.Background(), ids["always"], RemoveOptions{Force: true})
	done := f.inspect(ids["done"])
	if done.State != StateExited || done.ExitCode != 0 {
		t.Errorf("finished container: %s %d", done.State, done.ExitCode)
	}
	if out, _ := f.logs(ids["done"]); out != "finished\n" {
		t.Errorf("finished container's logs after restart: %q", out)
	}
	plain := f.inspect(ids["plain"])
	if plain.State != StateExited || plain.ExitCode != 255 || plain.Error == "" {
		t.Errorf("running container without policy: %s %d %q", plain.State, plain.ExitCode, plain.Error)
	}
	eventually(t, time.Minute, "the always container to run again", func() bool {
		c := f.inspect(ids["always"])
		return c.State == StateRunning && c.RestartCount >= 1
	})
	eventually(t, 20*time.Second, "the restarted container's output", func() bool {
		out, _ := f.logs(ids["always"])
		return strings.Count(out, "up\n") >= 2
	})
}

// childEngine is the engine process TestEngineRestartAfterKill kills.
func childEngine(home, ref string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "child engine:", err)
		os.Exit(2)
	}
	st, err := images.Open(filepath.Join(home, "images"))
	if err != nil {
		fail(err)
	}
	e, err := Open(context.Background(), Config{Home: filepath.Join(home, "engine"), Hypervisor: vmtest.New(), Images: st})
	if err != nil {
		fail(err)
	}
	ctx := context.Background()
	start := func(name string, o CreateOptions) string {
		o.Image, o.Name = ref, name
		c, err := e.Create(ctx, o)
		if err != nil {
			fail(err)
		}
		if err := e.Start(ctx, c.ID); err != nil {
			fail(err)
		}
		return c.ID
	}
	done := start("done", CreateOptions{Cmd: []string{"echo", "finished"}})
	if _, err := e.Wait(ctx, done); err != nil {
		fail(err)
	}
	plain := start("plain", CreateOptions{Cmd: []string{"sleep"}})
	always := start("always", CreateOptions{Cmd: []string{"serve", "up"}, Restart: RestartPolicy{Name: "always"}})
	for {
		ch, _ := e.Logs(ctx, always, LogOptions{})
		n := 0
		for range ch {
			n++
		}
		if n > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Printf("done=%s\nplain=%s\nalways=%s\nready=1\n", done, plain, always)
	select {}
}

func TestMain(m *testing.M) {
	if home := os.Getenv("SKIFF_ENGINE_CHILD"); home != "" {
		childEngine(home, os.Getenv("SKIFF_ENGINE_CHILD_IMAGE"))
	}
	code := m.Run()
	for _, p := range testTools.paths {
		os.Remove(p)
	}
	os.Exit(code)
}
