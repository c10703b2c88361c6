// Package cli_test drives the built `skiff` binary against a real `skiff daemon` (QEMU under TCG
// on Linux, the guest kernel from `make kernel`, the agent from `make agent`) and images from an
// in-process registry. One daemon is shared by the tests, which run in parallel where they can.
//
//	make agent kernel && go test ./test/cli
package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/internal/testutil"
)

// env is what TestMain sets up for every test.
var env struct {
	skiff   string // the built binary
	root    string // module root
	home    string // SKIFF_HOME of the shared daemon
	image   string // HOST/busybox:latest
	skip    string // why the suite cannot run here
	daemon  *testutil.Daemon
	regHost string
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root, err := filepath.Abs("../..")
	if err != nil {
		panic(err)
	}
	env.root = root
	tmp, err := os.MkdirTemp("", "skiffcli-") // short: socket paths must fit sun_path
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(tmp)
	if env.skip = testutil.VMPrerequisites(root); env.skip != "" {
		return m.Run()
	}
	if env.skiff, err = testutil.SkiffBinary(root, tmp); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	debs, err := testutil.DebsDir()
	if err != nil {
		env.skip = "busybox .debs missing (make setup): " + err.Error()
		return m.Run()
	}
	host, _, err := testutil.ServeRegistry(ctx, "127.0.0.1:0", debs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "registry:", err)
		return 1
	}
	env.regHost = host
	env.image = host + "/busybox:latest"
	env.home = filepath.Join(tmp, "home")
	d, err := testutil.StartDaemon(env.skiff, env.home, "skiff.sock")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env.daemon = d
	code := m.Run()
	if err := d.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the daemon:", err)
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "daemon log:\n%s\n", testutil.Tail(d.Log.String(), 4000))
	}
	return code
}

func need(t *testing.T) {
	t.Helper()
	if env.skip != "" {
		t.Skip(env.skip)
	}
}

// result of one skiff invocation.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
}

// skiff runs the binary against the shared daemon.
func skiff(t *testing.T, args ...string) result {
	t.Helper()
	return skiffIn(t, env.home, "", args...)
}

// skiffIn runs the binary with SKIFF_HOME=home and stdin.
func skiffIn(t *testing.T, home, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, env.skiff, args...)
	cmd.Env = append(os.Environ(), "SKIFF_HOME="+home)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Stdin = strings.NewReader(stdin)
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("skiff %v: %v", args, err)
	}
	return r
}

// ok runs skiff and fails the test unless it exits 0; it returns stdout.
func ok(t *testing.T, args ...string) string {
	t.Helper()
	r := skiff(t, args...)
	if r.code != 0 {
		t.Fatalf("skiff %s: %s", strings.Join(args, " "), r)
	}
	return r.stdout
}

// eventually retries f until it returns nil or d passes.
func eventually(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v: %v", what, d, err)
}

// freePort returns a TCP port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
