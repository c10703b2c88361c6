// Package docker_test drives the real docker CLI (DOCKER_HOST=unix://$SKIFF_HOME/docker.sock)
// against a real `skiff daemon` (QEMU under TCG on Linux, the guest kernel from `make kernel`, the
// agent from `make agent`). The busybox image is built from Debian's .deb and loaded with
// `docker load`; an in-process registry serves it for `docker pull`.
//
//	make agent kernel && go test ./test/docker
package docker_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/skiff-containers/skiff/internal/testutil"
)

var env struct {
	skiff   string // the built binary
	docker  string // the docker CLI
	home    string // SKIFF_HOME of the daemon
	config  string // DOCKER_CONFIG: no user contexts or credentials
	archive string // docker-archive tar of busybox:latest
	regHost string // the test registry
	skip    string
	daemon  *testutil.Daemon
}

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root, err := filepath.Abs("../..")
	if err != nil {
		panic(err)
	}
	tmp, err := os.MkdirTemp("", "skiffdk-") // short: socket paths must fit sun_path
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(tmp)
	if env.skip = prerequisites(root); env.skip != "" {
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
	img, err := testutil.BuildBusyboxImage(debs, "amd64")
	if err != nil {
		fmt.Fprintln(os.Stderr, "building the busybox image:", err)
		return 1
	}
	env.archive = filepath.Join(tmp, "busybox.tar")
	tag, _ := name.NewTag("busybox:latest")
	if err := tarball.WriteToFile(env.archive, tag, img); err != nil {
		fmt.Fprintln(os.Stderr, "writing the busybox archive:", err)
		return 1
	}
	host, _, err := testutil.ServeRegistry(ctx, "127.0.0.1:0", debs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "registry:", err)
		return 1
	}
	env.regHost = host
	env.config = filepath.Join(tmp, "dockerconfig")
	os.MkdirAll(env.config, 0o700)
	env.home = filepath.Join(tmp, "home")
	d, err := testutil.StartDaemon(env.skiff, env.home, "docker.sock")
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
		fmt.Fprintf(os.Stderr, "daemon log:\n%s\n", testutil.Tail(d.Log.String(), 6000))
	}
	return code
}

func prerequisites(root string) string {
	if why := testutil.VMPrerequisites(root); why != "" {
		return why
	}
	d, err := exec.LookPath("docker")
	if err != nil {
		return "no docker CLI (make setup says how to get one)"
	}
	env.docker = d
	return ""
}

func need(t *testing.T) {
	t.Helper()
	if env.skip != "" {
		t.Skip(env.skip)
	}
}

// result of one CLI invocation.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
}

func runCmd(t *testing.T, stdin string, bin string, envv []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), envv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Stdin = strings.NewReader(stdin)
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	return r
}

// docker runs the docker CLI against the daemon's Docker socket.
func docker(t *testing.T, args ...string) result {
	t.Helper()
	return dockerIn(t, "", args...)
}

func dockerIn(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return runCmd(t, stdin, env.docker, []string{"DOCKER_HOST=unix://" + filepath.Join(env.home, "docker.sock"),
		"DOCKER_CONFIG=" + env.config, "DOCKER_CONTEXT=", "DOCKER_CLI_HINTS=false"}, args...)
}

// dockerOK runs docker and fails the test unless it exits 0; it returns stdout.
func dockerOK(t *testing.T, args ...string) string {
	t.Helper()
	r := docker(t, args...)
	if r.code != 0 {
		t.Fatalf("docker %s: %s", strings.Join(args, " "), r)
	}
	return r.stdout
}

func skiff(t *testing.T, args ...string) result {
	t.Helper()
	return runCmd(t, "", env.skiff, []string{"SKIFF_HOME=" + env.home}, args...)
}

// loadBusybox loads the busybox archive once for the tests that run it.
var (
	loadOnce sync.Once
	loaded   result
)

func loadBusybox(t *testing.T) {
	t.Helper()
	loadOnce.Do(func() { loaded = docker(t, "load", "-i", env.archive) })
	if loaded.code != 0 || !strings.Contains(loaded.stdout, "Loaded image: busybox:latest") {
		t.Fatalf("docker load: %s", loaded)
	}
}
