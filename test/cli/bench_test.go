package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"
)

// BenchmarkRunRmTrue reports the p50 (and p90) wall time of `skiff run --rm busybox true`, and
// the first run's apart.
func BenchmarkRunRmTrue(b *testing.B) {
	needB(b)
	const runs = 10
	runOnce := func() time.Duration {
		start := time.Now()
		if out, err := skiffCmd("run", "--rm", env.image, "true").CombinedOutput(); err != nil {
			b.Fatalf("run --rm true: %v\n%s", err, out)
		}
		return time.Since(start)
	}
	// The first run pulls the image, builds the initramfs and, the first
	// time this VM shape boots, its boot snapshot: reported apart.
	b.ReportMetric(runOnce().Seconds(), "first-s")
	for i := 0; i < b.N; i++ {
		var ds []time.Duration
		for j := 0; j < runs; j++ {
			ds = append(ds, runOnce())
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		b.ReportMetric(ds[runs/2].Seconds(), "p50-s")
		b.ReportMetric(ds[runs*9/10].Seconds(), "p90-s")
	}
}

// BenchmarkLogThroughput reports MB/s from a container writing as fast as it can (100-byte lines
// from `yes`) to what `skiff logs -f` returns, timed from the first byte to the last (the VM's boot
// is BenchmarkRunRmTrue's business). gen-MB/s is the same generator writing to /dev/null in the
// guest (busybox's `time`): the ceiling the VM itself sets, which no host-side change can pass.
func BenchmarkLogThroughput(b *testing.B) {
	needB(b)
	const size = 64 << 20
	gen := fmt.Sprintf("yes \"$(printf %%099d 0)\" | head -c %d", size)
	for i := 0; i < b.N; i++ {
		out, err := skiffCmd("run", "-d", env.image, "sh", "-c", gen).Output()
		if err != nil {
			b.Fatalf("run -d: %v", err)
		}
		id := strings.TrimSpace(string(out))
		cmd := skiffCmd("logs", "-f", id)
		pipe, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		first := make([]byte, 1)
		if _, err := io.ReadFull(pipe, first); err != nil {
			b.Fatalf("no log output: %v", err)
		}
		start := time.Now()
		n, _ := io.Copy(io.Discard, pipe)
		d := time.Since(start)
		cmd.Wait()
		skiffCmd("rm", "-f", id).Run()
		if n+1 < size*99/100 {
			b.Fatalf("logs returned %d bytes, want about %d", n+1, size)
		}
		b.ReportMetric(float64(n+1)/1e6/d.Seconds(), "MB/s")

		out, err = skiffCmd("run", "--rm", env.image, "time", "sh", "-c", gen+" >/dev/null").CombinedOutput()
		var m, sec float64
		real := bytes.Index(out, []byte("real")) // busybox: "real\t0m 1.23s"
		if err != nil || real < 0 {
			b.Fatalf("timing the generator in the guest: %v\n%s", err, out)
		}
		if _, err := fmt.Sscanf(string(out[real:]), "real %fm %fs", &m, &sec); err != nil {
			b.Fatalf("reading %q: %v", out, err)
		}
		b.ReportMetric(float64(size)/1e6/(60*m+sec), "gen-MB/s")
	}
}

// BenchmarkPortForward reports the throughput of a published port (the container streams
// /dev/zero through busybox nc) and the round-trip latency it adds over a direct loopback
// connection (an echo server in the container vs one on the host). The source is `cat /dev/zero`,
// not `yes`: busybox's yes makes two stdio calls per two-byte line, and under TCG the same forward
// carried 2.2-2.5 MB per QEMU CPU-second from yes against 25-40 from cat: it measured yes.
// It runs with one vCPU and with two (the default on a machine with two CPUs or more): under TCG the guest is the bound, and with
// two vCPUs the sender and the agent run side by side.
func BenchmarkPortForward(b *testing.B) {
	needB(b)
	for _, cpus := range []string{"1", "2"} {
		b.Run("cpus="+cpus, func(b *testing.B) { benchPortForward(b, cpus) })
	}
}

func benchPortForward(b *testing.B, cpus string) {
	pSrc, pEcho := freePortB(b), freePortB(b)
	out, err := skiffCmd("run", "-d", "--cpus", cpus, "-p", fmt.Sprintf("127.0.0.1:%d:5000", pSrc), "-p", fmt.Sprintf("127.0.0.1:%d:5001", pEcho),
		env.image, "sh", "-c", "nc -ll -p 5000 -e cat /dev/zero & exec nc -ll -p 5001 -e cat").Output()
	if err != nil {
		b.Fatalf("run -d: %v", err)
	}
	id := strings.TrimSpace(string(out))
	defer skiffCmd("rm", "-f", id).Run()
	var conn net.Conn
	deadline := time.Now().Add(2 * time.Minute)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", pEcho))
		if err == nil {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err = c.Write([]byte("ping\n")); err == nil {
				if l, err2 := bufio.NewReader(c).ReadString('\n'); err2 == nil && l == "ping\n" {
					c.SetDeadline(time.Time{})
					conn = c
					break
				}
			}
			c.Close()
		}
		if time.Now().After(deadline) {
			b.Fatalf("the echo server never answered: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	defer conn.Close()
	direct := hostEcho(b)
	defer direct.Close()
	// Warm-up, not timed: a VM restored from its boot snapshot starts with TCG's translation cache
	// empty, and its first transfer runs the guest's forward path through the translator (measured:
	// 85-95 MB/s for the first 256 MiB, 100-116 for the next ones).
	if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", pSrc)); err == nil {
		io.CopyN(io.Discard, c, 64<<20)
		c.Close()
	}
	for i := 0; i < b.N; i++ {
		const size = 256 << 20
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", pSrc))
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		n, _ := io.CopyN(io.Discard, c, size)
		d := time.Since(start)
		c.Close()
		b.ReportMetric(float64(n)/1e6/d.Seconds(), "MB/s")
		b.ReportMetric(float64(rtt(b, conn).Microseconds()), "fwd-rtt-µs")
		b.ReportMetric(float64(rtt(b, direct).Microseconds()), "direct-rtt-µs")
	}
}

// rtt is the median round trip of a small message on an echo connection.
func rtt(b *testing.B, c net.Conn) time.Duration {
	r := bufio.NewReader(c)
	var ds []time.Duration
	for i := 0; i < 50; i++ {
		start := time.Now()
		if _, err := c.Write([]byte("0123456789\n")); err != nil {
			b.Fatal(err)
		}
		if _, err := r.ReadString('\n'); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(start))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2]
}

func hostEcho(b *testing.B) net.Conn {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		c, err := l.Accept()
		l.Close()
		if err == nil {
			io.Copy(c, c)
			c.Close()
		}
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func needB(b *testing.B) {
	if env.skip != "" {
		b.Skip(env.skip)
	}
}

func freePortB(b *testing.B) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func skiffCmd(args ...string) *exec.Cmd {
	cmd := exec.CommandContext(context.Background(), env.skiff, args...)
	cmd.Env = append(os.Environ(), "SKIFF_HOME="+env.home)
	return cmd
}
