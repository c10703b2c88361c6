package cli_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/internal/testutil"
)

// The daemon killed with SIGKILL and started again keeps every record and log and applies the
// restart policies (its own daemon and data dir: it is killed).
func TestDaemonKilledAndRestarted(t *testing.T) {
	need(t)
	t.Parallel()
	home, err := os.MkdirTemp("", "skiffk-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	d, err := testutil.StartDaemon(env.skiff, home, "skiff.sock")
	if err != nil {
		t.Fatal(err)
	}
	run := func(stdin string, args ...string) result { return skiffIn(t, home, stdin, args...) }
	must := func(args ...string) string {
		t.Helper()
		r := run("", args...)
		if r.code != 0 {
			t.Fatalf("skiff %v: %s\ndaemon log:\n%s", args, r, testutil.Tail(d.Log.String(), 3000))
		}
		return strings.TrimSpace(r.stdout)
	}
	if got := must("run", "--name", "done", env.image, "echo", "kept across the crash"); got != "kept across the crash" {
		t.Fatalf("run: %q", got)
	}
	always := must("run", "-d", "--name", "always", "--restart", "always", env.image, "sh", "-c", "echo started; sleep 600")
	no := must("run", "-d", "--name", "norestart", env.image, "sleep", "600")
	eventually(t, 60*time.Second, "always is running", func() error {
		if !strings.Contains(run("", "logs", always).stdout, "started") {
			return fmt.Errorf("not started")
		}
		return nil
	})
	d.Kill()
	if _, err := os.Stat(filepath.Join(home, "skiff.sock")); err != nil {
		t.Logf("socket gone after SIGKILL: %v", err)
	}
	d, err = testutil.StartDaemon(env.skiff, home, "skiff.sock")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := d.Stop(); err != nil {
			t.Error(err)
		}
	}()
	ps := must("ps", "-a")
	for _, name := range []string{"done", "always", "norestart"} {
		if !strings.Contains(ps, name) {
			t.Errorf("ps -a after the restart lacks %s:\n%s", name, ps)
		}
	}
	if got := must("logs", "done"); got != "kept across the crash" {
		t.Errorf("logs of done after the restart: %q", got)
	}
	eventually(t, 90*time.Second, "the always policy restarts its container", func() error {
		c := inspectIn(t, home, always)
		if c.State != "running" || strings.Count(run("", "logs", always).stdout, "started") < 2 {
			return fmt.Errorf("state %s, logs %q", c.State, run("", "logs", always).stdout)
		}
		return nil
	})
	if c := inspectIn(t, home, no); c.State != "exited" {
		t.Errorf("a container without a restart policy is %s after the crash, want exited", c.State)
	}
	must("rm", "-f", always, no, "done")
}
