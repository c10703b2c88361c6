package daemon_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/app"
	"github.com/skiff-containers/skiff/app/client"
	"github.com/skiff-containers/skiff/app/daemon"
	"github.com/skiff-containers/skiff/internal/testutil"
)

// The services over the real engine (the agent as a host process: SKIFF_HYPERVISOR=hostproc),
// served by daemon.Run on a real socket and driven through the typed client, as the CLI does.
func TestServicesOverRealEngine(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the agent in host mode needs root")
	}
	if !daemon.HostprocBuilt {
		t.Skip("the hostproc backend is only in builds with -tags skiff_hostproc (scripts/go-test.sh passes it)")
	}
	t.Setenv("SKIFF_HYPERVISOR", "hostproc")
	xdg := t.TempDir() // where start at login writes its entry
	t.Setenv("XDG_CONFIG_HOME", xdg)
	image := testutil.Registry(t) + "/busybox:latest"
	home, err := os.MkdirTemp("", "skiffd-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(home)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	runCtx, stop := context.WithCancel(ctx)
	go func() {
		done <- daemon.Run(runCtx, daemon.Config{Home: home, Ready: func(s string) { ready <- s }, StopTimeout: 10 * time.Second})
	}()
	var sock string
	select {
	case sock = <-ready:
	case err := <-done:
		if strings.Contains(err.Error(), "agent") {
			t.Skipf("no embedded agent (make agent): %v", err)
		}
		t.Fatal(err)
	}
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("daemon.Run: %v", err)
		}
	}()
	c, err := client.Dial(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// run, wait, logs
	ctr, err := c.Containers.Run(ctx, app.RunRequest{Image: image, Name: "hello", Cmd: []string{"echo", "hello from the engine"}})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := c.Containers.Wait(ctx, "hello"); err != nil || code != 0 {
		t.Fatalf("wait: %d %v", code, err)
	}
	if lines, err := c.Containers.Logs(ctx, ctr.ID, app.LogQuery{}); err != nil || len(lines) != 1 || lines[0].Data != "hello from the engine\n" {
		t.Errorf("logs: %+v %v", lines, err)
	}

	// the settings (they leave 1 CPU and 256 MiB as the defaults of the containers run next)
	checkSettings(t, ctx, c, home, strings.TrimSuffix(image, "/busybox:latest"), xdg)

	// exec session and stats on a running container
	if _, err := c.Containers.Run(ctx, app.RunRequest{Image: image, Name: "sleeper", Cmd: []string{"sleep", "600"}}); err != nil {
		t.Fatal(err)
	}
	ses, err := c.Containers.ExecStart(ctx, "sleeper", app.ExecRequest{Cmd: []string{"sh", "-c", "cat; echo err >&2; exit 4"}, Interactive: true})
	if err != nil {
		t.Fatal(err)
	}
	ses.Write(ctx, []byte("typed\n"))
	ses.CloseInput(ctx)
	out := map[string]string{}
	for {
		o, err := ses.Next(ctx)
		if err != nil {
			t.Fatalf("session: %v", err)
		}
		if o.Exit != nil {
			if o.Exit.Code != 4 {
				t.Errorf("exec exit %+v", o.Exit)
			}
			break
		}
		out[o.Stream] += string(o.Data)
	}
	if out["stdout"] != "typed\n" || out["stderr"] != "err\n" {
		t.Errorf("exec output %q", out)
	}
	stats, err := c.Containers.SubscribeStats(ctx, "sleeper")
	if err != nil {
		t.Fatal(err)
	}
	if st, ok, err := stats.Next(ctx); err != nil || !ok || st.PIDs == 0 || st.MemoryUsage == 0 {
		t.Errorf("stats %+v %v %v", st, ok, err)
	}
	stats.Close(ctx)

	// a folder added to the same container (its VM restarted: this hypervisor cannot hot-plug)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f.txt"), []byte("shared"), 0o644)
	old, err := c.Containers.Inspect(ctx, "sleeper")
	if err != nil {
		t.Fatal(err)
	}
	// Inspect says what the VM got: the defaults of the settings, for a run that set neither.
	if old.VM.CPUs != 1 || old.VM.MemoryMiB != 256 || old.Config.CPUs != 1 || old.Config.MemoryMiB != 256 {
		t.Errorf("the VM of a container run with the settings' defaults: %+v %+v, want 1 CPU and 256 MiB", old.VM, old.Config)
	}
	if plan, err := c.Containers.MountPlan(ctx, "sleeper"); err != nil || plan != app.MountRestart {
		t.Errorf("MountPlan: %q %v", plan, err)
	}
	mr, err := c.Containers.AddMount(ctx, "sleeper", dir, "/data", true)
	if err != nil {
		t.Fatal(err)
	}
	if nc := mr.Container; nc == nil || nc.ID != old.ID || nc.Name != "sleeper" || nc.State != "running" || len(nc.Mounts) != 1 ||
		!nc.Mounts[0].ReadOnly || mr.Change != app.MountRestart {
		t.Errorf("after AddMount: %s %+v (before: %s)", mr.Change, nc, old.ID)
	}
	// a file given to the same container; one onto a folder of the container is refused, changing nothing
	if _, err := c.Containers.AddMount(ctx, "sleeper", filepath.Join(dir, "f.txt"), "/etc", false); !errors.Is(err, app.ErrInvalid) || !strings.Contains(err.Error(), "is a folder in container sleeper") {
		t.Errorf("AddMount of a file onto a folder: %v", err)
	}
	if nc, err := c.Containers.Inspect(ctx, "sleeper"); err != nil || len(nc.Mounts) != 1 || !nc.StartedAt.Equal(mr.Container.StartedAt) {
		t.Errorf("after a refused AddMount: %+v %v", nc, err)
	}
	if mr, err := c.Containers.AddMount(ctx, "sleeper", filepath.Join(dir, "f.txt"), "/etc/f.conf", false); err != nil || len(mr.Container.Mounts) != 2 {
		t.Errorf("AddMount of a file: %+v %v", mr, err)
	}
	if _, err := c.Containers.AddMount(ctx, "sleeper", dir, "/data", false); !errors.Is(err, app.ErrConflict) {
		t.Errorf("AddMount at a target mounted already: %v", err)
	}
	ses, err = c.Containers.ExecStart(ctx, "sleeper", app.ExecRequest{Cmd: []string{"cat", "/data/f.txt"}})
	if err != nil {
		t.Fatal(err)
	}
	got := ""
	for {
		o, err := ses.Next(ctx)
		if err != nil || o.Exit != nil {
			break
		}
		got += string(o.Data)
	}
	if got != "shared" {
		t.Errorf("the mounted folder reads %q", got)
	}
	ses, err = c.Containers.ExecStart(ctx, "sleeper", app.ExecRequest{Cmd: []string{"cat", "/etc/f.conf"}})
	if err != nil {
		t.Fatal(err)
	}
	got = ""
	for {
		o, err := ses.Next(ctx)
		if err != nil || o.Exit != nil {
			break
		}
		got += string(o.Data)
	}
	if got != "shared" {
		t.Errorf("the mounted file reads %q", got)
	}

	// the engine's errors arrive with their codes (the calls by name, as the wire carries them)
	errs := []struct {
		method string
		params []any
		code   string
	}{
		{"Containers.Create", []any{app.RunRequest{Image: strings.Replace(image, "busybox", "nosuch", 1)}}, app.CodeNotFound},
		{"Containers.Create", []any{app.RunRequest{Image: image, Name: "hello"}}, app.CodeConflict},
		{"Containers.Remove", []any{"sleeper", false}, app.CodeConflict},
		{"Containers.ExecStart", []any{"sleeper", app.ExecRequest{Cmd: []string{"nosuchcommand"}}}, app.CodeCommandNotFound},
		{"Containers.ExecStart", []any{"hello", app.ExecRequest{Cmd: []string{"true"}}}, app.CodeNotRunning},
		{"Images.Inspect", []any{"nosuch:latest"}, app.CodeNotFound},
	}
	for _, tt := range errs {
		err := c.Bridge().Call(ctx, tt.method, nil, tt.params...)
		if app.CodeOf(err) != tt.code {
			t.Errorf("%s %v: %v (code %s), want %s", tt.method, tt.params, err, app.CodeOf(err), tt.code)
		}
	}
	if info, err := c.System.Info(ctx); err != nil || info.Hypervisor != "hostproc" || info.Containers != 2 || info.Images != 1 {
		t.Errorf("info %+v %v", info, err)
	}
	if err := c.Containers.Remove(ctx, "sleeper", true); err != nil {
		t.Fatal(err)
	}
}
