package docker_test

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Benchmarks of the Docker API front door (make bench; not tests).

// benchCmd runs bin with args against the test daemon, failing b unless it exits 0.
func benchCmd(b *testing.B, bin string, args ...string) string {
	b.Helper()
	out, err := benchExec(bin, args...).CombinedOutput()
	if err != nil {
		b.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// benchExec is bin with args, set to talk to the test daemon.
func benchExec(bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "SKIFF_HOME="+env.home, "DOCKER_HOST=unix://"+filepath.Join(env.home, "docker.sock"),
		"DOCKER_CONFIG="+env.config, "DOCKER_CONTEXT=", "DOCKER_CLI_HINTS=false")
	return cmd
}

func benchReady(b *testing.B) {
	b.Helper()
	if env.skip != "" {
		b.Skip(env.skip)
	}
	out := benchCmd(b, env.docker, "load", "-i", env.archive)
	if !strings.Contains(out, "Loaded image: busybox:latest") {
		b.Fatalf("docker load: %s", out)
	}
}

func p50p90(b *testing.B, ds []time.Duration, prefix string) {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	b.ReportMetric(ds[len(ds)/2].Seconds(), prefix+"p50-s")
	b.ReportMetric(ds[len(ds)*9/10].Seconds(), prefix+"p90-s")
}

// BenchmarkRunRmDockerVsSkiff reports the p50/p90 wall time of `docker run --rm busybox true`
// through docker.sock and of `skiff run --rm busybox true` through skiff.sock, interleaved on the
// same engine (a first run of each, which may build the boot snapshot, is left out): the cost of
// the Docker front door over Skiff's own.
func BenchmarkRunRmDockerVsSkiff(b *testing.B) {
	benchReady(b)
	const runs = 10
	benchCmd(b, env.docker, "run", "--rm", "busybox", "true")
	benchCmd(b, env.skiff, "run", "--rm", "busybox", "true")
	for i := 0; i < b.N; i++ {
		var dk, sk []time.Duration
		for j := 0; j < runs; j++ {
			t0 := time.Now()
			benchCmd(b, env.docker, "run", "--rm", "busybox", "true")
			dk = append(dk, time.Since(t0))
			t0 = time.Now()
			benchCmd(b, env.skiff, "run", "--rm", "busybox", "true")
			sk = append(sk, time.Since(t0))
		}
		p50p90(b, dk, "docker-")
		p50p90(b, sk, "skiff-")
	}
}

// BenchmarkDockerPs50 reports the p50/p90 wall time of `docker ps -a` with 50 containers (created,
// not started: the list's cost is the API's and the engine's, not the VMs').
func BenchmarkDockerPs50(b *testing.B) {
	benchReady(b)
	const n, runs = 50, 20
	var ids []string
	defer func() {
		if len(ids) > 0 {
			benchCmd(b, env.docker, append([]string{"rm", "-f"}, ids...)...)
		}
	}()
	for i := 0; i < n; i++ {
		id := benchCmd(b, env.docker, "create", "--name", "ps50-"+strconv.Itoa(i), "busybox", "true")
		ids = append(ids, strings.TrimSpace(id))
	}
	for i := 0; i < b.N; i++ {
		var ds []time.Duration
		for j := 0; j < runs; j++ {
			t0 := time.Now()
			out := benchCmd(b, env.docker, "ps", "-a", "--filter", "name=ps50-", "--format", "{{.Names}}")
			ds = append(ds, time.Since(t0))
			if got := len(strings.Fields(out)); got != n {
				b.Fatalf("docker ps -a lists %d of the %d containers", got, n)
			}
		}
		p50p90(b, ds, "")
	}
}

// BenchmarkComposeUpWait reports the p50/p90 wall time of `docker compose up -d --wait` of the
// two-service project (byNameProject: the server's health check passes, then the client starts),
// each followed by `down -v` (not timed); a first round, which may build boot snapshots, is left out.
func BenchmarkComposeUpWait(b *testing.B) {
	benchReady(b)
	if out, err := benchExec(env.docker, "compose", "version").CombinedOutput(); err != nil {
		b.Skipf("no docker compose plugin the tests' docker CLI finds (scripts/compose.sh): %v %s", err, out)
	}
	const runs = 5
	dir := filepath.Join(b.TempDir(), "skiffbench")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(byNameProject()), 0o644); err != nil {
		b.Fatal(err)
	}
	cmp := func(args ...string) string {
		return benchCmd(b, env.docker, append([]string{"compose", "--project-directory", dir, "-f", filepath.Join(dir, "compose.yaml")}, args...)...)
	}
	for i := 0; i < b.N; i++ {
		var ds []time.Duration
		for j := 0; j <= runs; j++ {
			t0 := time.Now()
			cmp("up", "-d", "--wait")
			if j > 0 {
				ds = append(ds, time.Since(t0))
			}
			cmp("down", "-v", "--timeout", "1")
		}
		p50p90(b, ds, "")
	}
}

// BenchmarkLogsDockerVsSkiff reports the MB/s of reading a stopped container's whole log (8 MiB, within one log file,
// of 100-byte lines) with `docker logs` through docker.sock (stdcopy-framed) and with `skiff logs`
// through skiff.sock, interleaved, best of three each: the cost of the Docker front door's log path.
func BenchmarkLogsDockerVsSkiff(b *testing.B) {
	benchReady(b)
	const size = 8 << 20
	gen := fmt.Sprintf("yes \"$(printf %%099d 0)\" | head -c %d", size)
	id := strings.TrimSpace(benchCmd(b, env.docker, "run", "-d", "busybox", "sh", "-c", gen))
	defer benchCmd(b, env.docker, "rm", "-f", id)
	benchCmd(b, env.docker, "wait", id)
	read := func(bin string) float64 {
		best := 0.0
		for j := 0; j < 3; j++ {
			cmd := benchExec(bin, "logs", id)
			cmd.Stderr = io.Discard
			pipe, err := cmd.StdoutPipe()
			if err != nil {
				b.Fatal(err)
			}
			t0 := time.Now()
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, pipe)
			if err := cmd.Wait(); err != nil || n < size*99/100 {
				b.Fatalf("%s logs: %d bytes, %v; want about %d", filepath.Base(bin), n, err, size)
			}
			best = max(best, float64(n)/1e6/time.Since(t0).Seconds())
		}
		return best
	}
	for i := 0; i < b.N; i++ {
		b.ReportMetric(read(env.docker), "docker-MB/s")
		b.ReportMetric(read(env.skiff), "skiff-MB/s")
	}
}
