// Package cli_test drives the built `skiff` binary against a real `skiff daemon` (QEMU under TCG
// on Linux, a Debian kernel from `make kernel`, the agent from `make agent`) and images from an
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
	"syscall"
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
	daemon  *daemon
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
	if env.skip = prerequisites(root); env.skip != "" {
		return m.Run()
	}
	env.skiff = filepath.Join(tmp, "skiff")
	build := exec.Command("go", "build", "-o", env.skiff, ".")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building skiff: %v\n%s", err, out)
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
	d, err := startDaemon(env.home)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env.daemon = d
	code := m.Run()
	if err := d.stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the daemon:", err)
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "daemon log:\n%s\n", tail(d.log.String(), 4000))
	}
	return code
}

// prerequisites returns why the suite cannot run, or "" (all of them are made by `make setup`).
func prerequisites(root string) string {
	kdir := os.Getenv("SKIFF_KERNEL_DIR")
	if kdir == "" {
		kdir = filepath.Join(root, "_build", "kernel")
		os.Setenv("SKIFF_KERNEL_DIR", kdir)
	}
	if _, err := os.Stat(filepath.Join(kdir, "amd64")); err != nil && os.Getenv("SKIFF_KERNEL") == "" {
		return "no kernel bundle in " + kdir + " (make kernel)"
	}
	if _, err := os.Stat(filepath.Join(root, "backend/vm/agentbin/skiff-agent-amd64")); err != nil {
		return "no guest agent (make agent)"
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		return "qemu-system-x86_64 missing (make setup)"
	}
	return ""
}

func need(t *testing.T) {
	t.Helper()
	if env.skip != "" {
		t.Skip(env.skip)
	}
}

// daemon is a running `skiff daemon`.
type daemon struct {
	home string
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan error
}

func startDaemon(home string) (*daemon, error) {
	d := &daemon{home: home, log: &syncBuffer{}, done: make(chan error, 1)}
	d.cmd = exec.Command(env.skiff, "daemon")
	d.cmd.Env = append(os.Environ(), "SKIFF_HOME="+home)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting skiff daemon: %w", err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	sock := filepath.Join(home, "skiff.sock")
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return d, nil
		}
		select {
		case err := <-d.done:
			return nil, fmt.Errorf("skiff daemon exited: %v\n%s", err, d.log.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	d.cmd.Process.Kill()
	return nil, fmt.Errorf("skiff daemon did not serve %s within 30 s\n%s", sock, d.log.String())
}

// stop ends the daemon gracefully (SIGTERM: it stops its containers).
func (d *daemon) stop() error {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		return err
	case <-time.After(60 * time.Second):
		d.cmd.Process.Kill()
		return fmt.Errorf("the daemon did not stop within 60 s")
	}
}

// kill ends the daemon with SIGKILL.
func (d *daemon) kill() {
	d.cmd.Process.Kill()
	<-d.done
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

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
