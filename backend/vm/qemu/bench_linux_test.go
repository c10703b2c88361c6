package qemu_test

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/backend/vm/qemu"
	"github.com/skiff-containers/skiff/internal/testutil"
)

// BenchmarkBoot boots 10 VMs (amd64, 1 vCPU, 512 MiB, busybox rootfs on
// virtiofs, no network) one after another per iteration and reports the p50
// of start → agent hello and start → first byte of the workload `echo hi`
// (run with -benchtime 1x; `make bench` does): restored from the shape's
// boot snapshot (after a first boot that builds it, reported apart) and
// booted cold.
func BenchmarkBoot(b *testing.B) {
	b.Run("snapshot", func(b *testing.B) {
		cache := b.TempDir()
		benchBoot(b, newEnv(b, "amd64", func(o *qemu.Options) { o.CacheDir = cache }), true)
	})
	b.Run("cold", func(b *testing.B) {
		benchBoot(b, newEnv(b, "amd64", func(o *qemu.Options) { o.NoSnapshots = true }), false)
	})
}

func benchBoot(b *testing.B, e *env, build bool) {
	rootfs := testutil.BusyboxRootfs(b)
	const boots = 10
	var hello, first, cpuHello, cpuFirst []time.Duration
	if build { // the first boot of the shape builds its snapshot
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		t0 := time.Now()
		m, err := e.hv.Start(ctx, e.spec(b, "bench", vm.Share{Tag: vm.RootShareTag, HostPath: rootfs}))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := agentproto.NewClient(m.Dial).Hello(ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(t0).Seconds(), "s-first-hello-with-build")
		m.Stop(ctx, true)
		cancel()
	}
	for n := 0; n < b.N; n++ {
		for i := 0; i < boots; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			spec := e.spec(b, "bench", vm.Share{Tag: vm.RootShareTag, HostPath: rootfs})
			t0 := time.Now()
			m, err := e.hv.Start(ctx, spec)
			if err != nil {
				b.Fatal(err)
			}
			c := agentproto.NewClient(m.Dial)
			if _, err := c.Hello(ctx); err != nil {
				b.Fatal(err)
			}
			hello = append(hello, time.Since(t0))
			if console, _ := os.ReadFile(spec.ConsoleLog); build != strings.Contains(string(console), "restored from boot snapshot") {
				b.Fatalf("restored from a snapshot: %v, want %v", !build, build)
			}
			cpuHello = append(cpuHello, qemuCPU(b))
			p, err := c.Run(ctx, agentproto.ProcessSpec{Args: []string{"echo", "hi"}})
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 1)
			if _, err := p.Stdout().Read(buf); err != nil {
				b.Fatal(err)
			}
			first = append(first, time.Since(t0))
			cpuFirst = append(cpuFirst, qemuCPU(b))
			p.Close()
			m.Stop(ctx, true)
			cancel()
		}
	}
	b.ReportMetric(p50(hello).Seconds(), "s-hello-p50")
	b.ReportMetric(p50(first).Seconds(), "s-first-output-p50")
	// CPU time qemu used until then: what the boot costs on an idle core,
	// a lower bound of the wall time that a loaded machine inflates.
	b.ReportMetric(p50(cpuHello).Seconds(), "s-hello-qemu-cpu-p50")
	b.ReportMetric(p50(cpuFirst).Seconds(), "s-first-output-qemu-cpu-p50")
	b.ReportMetric(0, "ns/op")
	load, _ := os.ReadFile("/proc/loadavg")
	b.Logf("%s: start→hello %v; start→first output %v; qemu CPU at first output %v; loadavg %s",
		e.hv.Name(), hello, first, cpuFirst, strings.TrimSpace(string(load)))
}

func p50(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// qemuCPU is the user+system CPU time of this process's qemu child.
func qemuCPU(b *testing.B) time.Duration {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+1:])
		if len(f) < 13 || f[1] != strconv.Itoa(os.Getpid()) || !strings.Contains(s[:i], "qemu-system") {
			continue
		}
		utime, _ := strconv.Atoi(f[11])
		stime, _ := strconv.Atoi(f[12])
		return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
	}
	b.Fatal("no qemu child process")
	return 0
}

// BenchmarkForward: 256 MiB through an agent port forward of a 2-vCPU VM,
// with the agent channel on the shared-memory ring and on the virtio-serial
// port: down from `cat /dev/zero` behind busybox nc in the guest (MB/s), and
// up to `cat > /dev/null` behind another (up-MB/s, until the guest has read
// it all and closed).
func BenchmarkForward(b *testing.B) {
	for _, tc := range []struct {
		name string
		opt  func(*qemu.Options)
	}{{"ring", func(*qemu.Options) {}}, {"serial", func(o *qemu.Options) { o.NoRing = true }}} {
		b.Run(tc.name, func(b *testing.B) {
			e := newEnv(b, "amd64", tc.opt)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			spec := e.spec(b, "fwd-"+tc.name, vm.Share{Tag: vm.RootShareTag, HostPath: testutil.BusyboxRootfs(b)})
			spec.CPUs = 2
			_, c := e.start(b, ctx, spec)
			w, err := c.Run(ctx, agentproto.ProcessSpec{Args: []string{"nc", "-ll", "-p", "5000", "-e", "cat", "/dev/zero"}})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			sink, err := c.Exec(ctx, agentproto.ProcessSpec{Args: []string{"nc", "-ll", "-p", "5001", "-e", "sh", "-c", "cat > /dev/null"}})
			if err != nil {
				b.Fatal(err)
			}
			defer sink.Close()
			// transfer runs one transfer on a new forward to port, retrying
			// while nc is still starting, and returns its MB/s.
			transfer := func(port int, n int64, move func(conn net.Conn) bool) float64 {
				for i := 0; ; i++ {
					var conn net.Conn
					ok, start := false, time.Now()
					if conn, err = c.Forward(ctx, port); err == nil {
						ok = move(conn)
						conn.Close()
					}
					if ok {
						return float64(n) / 1e6 / time.Since(start).Seconds()
					}
					if i == 50 {
						b.Fatalf("the forward to %d did not carry %d bytes: %v", port, n, err)
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
			down := func(n int64) float64 {
				return transfer(5000, n, func(conn net.Conn) bool {
					got, _ := io.CopyN(io.Discard, conn, n)
					return got == n
				})
			}
			zeros := make([]byte, 512<<10)
			up := func(n int64) float64 {
				return transfer(5001, n, func(conn net.Conn) bool {
					for sent := int64(0); sent < n; sent += int64(len(zeros)) {
						if _, err := conn.Write(zeros); err != nil {
							return false
						}
					}
					conn.(interface{ CloseWrite() error }).CloseWrite()
					_, err := io.Copy(io.Discard, conn) // EOF once the guest's cat read everything
					return err == nil
				})
			}
			down(64 << 20) // TCG translates the paths once
			up(64 << 20)
			for i := 0; i < b.N; i++ {
				b.ReportMetric(down(256<<20), "MB/s")
				b.ReportMetric(up(256<<20), "up-MB/s")
			}
		})
	}
}

// BenchmarkUserNetUpload sends 256 MiB from a guest (`dd | nc`, busybox)
// through its NAT network to a host server on the host's non-loopback
// address, three times in one VM (booted cold: the network is the same
// either way), and reports the p50 in MB/s.
func BenchmarkUserNetUpload(b *testing.B) {
	e := newEnv(b, "amd64", func(o *qemu.Options) { o.NoSnapshots = true })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	spec := e.spec(b, "netbench", vm.Share{Tag: vm.RootShareTag, HostPath: testutil.BusyboxRootfs(b)})
	spec.Network, spec.Cmdline = vm.Network{Mode: vm.NetworkNAT}, nil
	_, c := e.start(b, ctx, spec)
	w, err := c.Run(ctx, agentproto.ProcessSpec{Args: []string{"sleep", "1000"}}) // exec needs a workload
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	ip := hostIPv4(b)
	l, err := net.Listen("tcp4", ip+":0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	const size = 256 << 20
	got := make(chan int64, 1)
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			n, _ := io.CopyN(io.Discard, conn, size)
			conn.Close()
			got <- n
		}
	}()
	addr := ip + " " + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	pid := qemuPid(b, spec.StateDir)
	for n := 0; n < b.N; n++ {
		var rates, perCPU []float64
		for i := 0; i < 3; i++ {
			t0, q0, s0 := time.Now(), procCPU(pid), procCPU("self")
			out, _ := execOut(b, ctx, c, "sh", "-c", "dd if=/dev/zero bs=65536 count=4096 2>/dev/null | nc "+addr)
			if n := <-got; n != size {
				b.Fatalf("the host got %d bytes: %s", n, out)
			}
			rates = append(rates, size/time.Since(t0).Seconds()/1e6)
			cpu := procCPU(pid) - q0 + procCPU("self") - s0
			perCPU = append(perCPU, size/cpu/1e6)
		}
		// Under load the wall time measures the machine; MB per CPU-second
		// of qemu (the guest included) and of this process (the engine's
		// side of the network) much less so.
		b.Logf("MB/s: %.1f; MB per CPU-s of qemu and the engine: %.1f", rates, perCPU)
		sort.Float64s(rates)
		sort.Float64s(perCPU)
		b.ReportMetric(rates[1], "MB/s-p50")
		b.ReportMetric(perCPU[1], "MB/cpu-s-p50")
	}
}

// qemuPid is the pid of the machine's qemu (its pid file: "pid start-time").
func qemuPid(t testing.TB, stateDir string) string {
	b, err := os.ReadFile(filepath.Join(stateDir, "qemu.pid"))
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	t.Fatalf("qemu pid file: %v", err)
	return ""
}

// procCPU is the user+system CPU seconds of /proc/<pid> ("self": this
// process).
func procCPU(pid string) float64 {
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	s := string(stat)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}
