package cli_test

import (
	"bufio"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/app/apptest"

	"github.com/skiff-containers/skiff/internal/testutil"
)

// `skiff serve --http` next to the running daemon: the dashboard it serves as a proxy to the
// engine's socket passes the same gate as the engine's own (apptest.CheckDashboardGuard), and an
// address other machines can reach is refused unless --http-public is given.
func TestServeDashboard(t *testing.T) {
	need(t)
	home := filepath.Join(t.TempDir(), "home")
	r := skiffIn(t, home, "", "serve", "--http", "0.0.0.0:0")
	if r.code == 0 || !strings.Contains(r.stderr, "--http-public") || !strings.Contains(r.stderr, "0.0.0.0:0") {
		t.Errorf("serve --http 0.0.0.0:0: %s; want a refusal naming the address and --http-public", r)
	}
	if _, err := os.Stat(home); err == nil {
		t.Errorf("the refused serve created %s", home)
	}

	cmd := exec.Command(env.skiff, "serve", "--http", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "SKIFF_HOME="+env.home)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var log testutil.SyncBuffer
	cmd.Stderr = &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	printed := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "Skiff dashboard: "); ok {
				printed <- u
			}
		}
	}()
	var u *url.URL
	select {
	case s := <-printed:
		if u, err = url.Parse(s); err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("skiff serve printed no URL within 30 s\n%s", log.String())
	}
	// stderr comes through a pipe of its own: the line logged before the URL was printed may still
	// be on its way.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(log.String(), "attaching to the running engine"); {
		if time.Now().After(deadline) {
			t.Fatalf("skiff serve did not attach to the running daemon:\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	apptest.CheckDashboardGuard(t, u.Host, u.Query().Get("token"))
}
