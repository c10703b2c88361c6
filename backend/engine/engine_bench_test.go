//go:build linux

package engine

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/images"
	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/backend/vm/qemu"
	"github.com/skiff-containers/skiff/internal/testutil"
)

// Benchmarks (`make bench` runs them with -benchtime 1x): each iteration does a fixed amount of work
// and reports throughput as custom metrics. "hostproc" runs the agent as a host process; "qemu" boots
// a VM (TCG on this machine) once per benchmark.

func benchEngine(b *testing.B, backend string) (*Engine, string) {
	b.Helper()
	var hv vm.Hypervisor
	var kernel KernelFunc
	switch backend {
	case "hostproc":
		hv = testHypervisor(b)
	case "qemu":
		kdir := os.Getenv(vm.EnvKernelDir)
		if kdir == "" {
			kdir = "../../_build/kernel"
		}
		if _, err := vm.LoadBundle(filepath.Join(kdir, vm.HostArch())); err != nil {
			b.Skipf("no kernel bundle (make kernel): %v", err)
		}
		var err error
		if hv, err = qemu.New(qemu.Options{Accel: os.Getenv("SKIFF_QEMU_ACCEL")}); err != nil {
			b.Skipf("no hypervisor: %v", err)
		}
		cache := b.TempDir()
		kernel = func(ctx context.Context, arch string) (*vm.Bundle, string, error) {
			bu, err := vm.ResolveKernel(ctx, vm.KernelOptions{Arch: arch, Path: filepath.Join(kdir, arch)})
			if err != nil {
				return nil, "", err
			}
			initrd, err := vm.BuildInitramfs(ctx, bu, cache)
			return bu, initrd, err
		}
	}
	host := testutil.Registry(b)
	home := b.TempDir()
	st, err := images.Open(filepath.Join(home, "images"))
	if err != nil {
		b.Fatal(err)
	}
	e, err := Open(context.Background(), Config{Home: filepath.Join(home, "engine"), Hypervisor: hv, Images: st, Kernel: kernel})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = e.Close(context.Background()) })
	return e, host + "/busybox:latest"
}

// BenchmarkPortForward: GET of a 64 MiB file from busybox httpd through the engine's port forward
// (MB/s), and the p50 round trip of a small request, next to a direct loopback connection where the
// backend shares the host's network (hostproc). For qemu it also reports MB per CPU-second of the
// QEMU process (guest and device emulation together), which depends far less on the machine's load
// than MB/s.
func BenchmarkPortForward(b *testing.B) {
	for _, backend := range []string{"hostproc", "qemu"} {
		b.Run(backend, func(b *testing.B) {
			e, ref := benchEngine(b, backend)
			ctx := context.Background()
			c, err := e.Create(ctx, CreateOptions{Image: ref, Ports: []PortMapping{{ContainerPort: 18080}},
				Cmd: []string{"httpd", "-f", "-p", "127.0.0.1:18080", "-h", "/www"}})
			if err != nil {
				b.Fatal(err)
			}
			_ = os.MkdirAll(filepath.Join(rootOf(b, c), "www"), 0o755)
			big := make([]byte, 64<<20)
			for i := range big {
				big[i] = byte(i * 7)
			}
			_ = os.WriteFile(filepath.Join(rootOf(b, c), "www", "big"), big, 0o644)
			_ = os.WriteFile(filepath.Join(rootOf(b, c), "www", "small"), []byte("ok\n"), 0o644)
			if err := e.Start(ctx, c.ID); err != nil {
				b.Fatal(err)
			}
			defer e.Remove(ctx, c.ID, RemoveOptions{Force: true})
			got, _ := e.Inspect(ctx, c.ID)
			fwd := fmt.Sprintf("127.0.0.1:%d", got.Ports[0].HostPort)
			tr := &http.Transport{}
			cl := &http.Client{Transport: tr}
			get := func(addr, path string) (int64, error) {
				resp, err := cl.Get("http://" + addr + path)
				if err != nil {
					return 0, err
				}
				defer resp.Body.Close()
				return io.Copy(io.Discard, resp.Body)
			}
			deadline := time.Now().Add(time.Minute)
			for {
				if _, err := get(fwd, "/small"); err == nil {
					break
				}
				if time.Now().After(deadline) {
					b.Fatal("httpd did not answer")
				}
				time.Sleep(50 * time.Millisecond)
			}
			measure := func(addr string) (mbps float64, p50 time.Duration) {
				start, cpu0 := time.Now(), qemuCPUSeconds(e.stateDir(c.ID))
				n, err := get(addr, "/big")
				if err != nil || n != int64(len(big)) {
					b.Fatalf("GET /big via %s: %d bytes, %v", addr, n, err)
				}
				mbps = float64(n) / 1e6 / time.Since(start).Seconds()
				if cpu := qemuCPUSeconds(e.stateDir(c.ID)) - cpu0; cpu > 0 && addr == fwd {
					b.ReportMetric(float64(n)/1e6/cpu, "fwd-MB/qemu-cpu-s")
				}
				var rtts []time.Duration
				for i := 0; i < 50; i++ {
					tr.CloseIdleConnections() // a new connection each time, as a client would
					t0 := time.Now()
					if _, err := get(addr, "/small"); err != nil {
						b.Fatal(err)
					}
					rtts = append(rtts, time.Since(t0))
				}
				sort.Slice(rtts, func(i, j int) bool { return rtts[i] < rtts[j] })
				return mbps, rtts[len(rtts)/2]
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				mbps, p50 := measure(fwd)
				b.ReportMetric(mbps, "fwd-MB/s")
				b.ReportMetric(float64(p50.Microseconds()), "fwd-p50-µs")
				if backend == "hostproc" {
					if c, err := net.Dial("tcp", "127.0.0.1:18080"); err == nil {
						c.Close()
						dm, dp := measure("127.0.0.1:18080")
						b.ReportMetric(dm, "direct-MB/s")
						b.ReportMetric(float64((p50 - dp).Microseconds()), "added-p50-µs")
					}
				}
			}
		})
	}
}

// qemuCPUSeconds is the CPU time (user + system) the QEMU process of a machine has used, from the
// pid file in its state dir; 0 when there is none (hostproc).
func qemuCPUSeconds(stateDir string) float64 {
	raw, err := os.ReadFile(filepath.Join(stateDir, "qemu.pid"))
	if err != nil {
		return 0
	}
	pid, _, _ := bytes.Cut(raw, []byte(" "))
	st, err := os.ReadFile("/proc/" + string(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after "(comm) ": state is [0], utime [11] and stime [12], in clock ticks (100 a second).
	_, rest, _ := bytes.Cut(st, []byte(") "))
	f := bytes.Fields(rest)
	var u, k float64
	if len(f) < 13 {
		return 0
	}
	if _, err := fmt.Sscan(string(f[11])+" "+string(f[12]), &u, &k); err != nil {
		return 0
	}
	return (u + k) / 100
}

// BenchmarkLogs: a container writes 64 MiB of lines as fast as it can; MB/s of what LogBatches
// returns, measured from Start to the last entry read; also the time Start took, and the CPU time
// this process (engine + reader; the agent and the workload are other processes) spent, which
// depends less on the machine's load than MB/s does. "yes" makes the lines with busybox yes | head
// (which costs ~0.7 CPU-s itself, competing for the same cores); "cat" copies them from a file.
func BenchmarkLogs(b *testing.B) {
	const (
		total = 64 << 20
		line  = "skiff log benchmark line: the quick brown fox jumps over the lazy dog"
	)
	e, ref := benchEngine(b, "hostproc")
	ctx := context.Background()
	for _, src := range []string{"yes", "cat"} {
		b.Run(src, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				cmd := fmt.Sprintf("yes '%s' | head -c %d", line, total)
				if src == "cat" {
					cmd = "cat /lines"
				}
				c, err := e.Create(ctx, CreateOptions{Image: ref, Cmd: []string{"sh", "-c", cmd}})
				if err != nil {
					b.Fatal(err)
				}
				if src == "cat" {
					lines := bytes.Repeat([]byte(line+"\n"), total/(len(line)+1)+1)[:total]
					if err := os.WriteFile(filepath.Join(rootOf(b, c), "lines"), lines, 0o644); err != nil {
						b.Fatal(err)
					}
				}
				cpu0, child0 := cpuTime(syscall.RUSAGE_SELF), cpuTime(syscall.RUSAGE_CHILDREN)
				start := time.Now()
				if err := e.Start(ctx, c.ID); err != nil {
					b.Fatal(err)
				}
				started := time.Since(start)
				ch, err := e.LogBatches(ctx, c.ID, LogOptions{Follow: true})
				if err != nil {
					b.Fatal(err)
				}
				var n int
				for batch := range ch {
					for _, l := range batch {
						n += len(l.Data)
					}
				}
				el := time.Since(start)
				cpu := cpuTime(syscall.RUSAGE_SELF) - cpu0
				if n != total {
					b.Fatalf("logs returned %d bytes, want %d", n, total)
				}
				b.ReportMetric(float64(n)/1e6/el.Seconds(), "MB/s")
				b.ReportMetric(started.Seconds(), "start-s")
				b.ReportMetric(cpu.Seconds(), "cpu-s")
				_ = e.Remove(ctx, c.ID, RemoveOptions{Force: true})
				// The agent (a child of this process) and the workload, counted once the agent is reaped.
				b.ReportMetric((cpuTime(syscall.RUSAGE_CHILDREN) - child0).Seconds(), "agent+workload-cpu-s")
			}
		})
	}
}

// cpuTime is the user + system CPU time this process (RUSAGE_SELF) or its reaped children
// (RUSAGE_CHILDREN) have used.
func cpuTime(who int) time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(who, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRunRm: p50 wall time of create + start + wait of `true` with AutoRemove, five runs, and
// of the boot part alone (Start).
func BenchmarkRunRm(b *testing.B) {
	for _, backend := range []string{"hostproc", "qemu"} {
		b.Run(backend, func(b *testing.B) {
			e, ref := benchEngine(b, backend)
			ctx := context.Background()
			if _, err := e.Pull(ctx, ref, images.PullOptions{}); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				var total, start []time.Duration
				for j := 0; j < 5; j++ {
					t0 := time.Now()
					c, err := e.Create(ctx, CreateOptions{Image: ref, Cmd: []string{"true"}, AutoRemove: true})
					if err != nil {
						b.Fatal(err)
					}
					t1 := time.Now()
					if err := e.Start(ctx, c.ID); err != nil {
						b.Fatal(err)
					}
					start = append(start, time.Since(t1))
					if code, err := e.Wait(ctx, c.ID); err != nil || code != 0 {
						b.Fatalf("wait: %d %v", code, err)
					}
					total = append(total, time.Since(t0))
				}
				p50 := func(d []time.Duration) float64 {
					sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
					return d[len(d)/2].Seconds()
				}
				b.ReportMetric(p50(total), "run-p50-s")
				b.ReportMetric(p50(start), "start-p50-s")
			}
		})
	}
}
