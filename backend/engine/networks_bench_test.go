//go:build linux

package engine

import (
	"context"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkNetworkPeer (qemu): two containers on one user-defined network; the client fetches a
// 32 MiB file from the server's busybox httpd by name (MB/s, timed in the client's guest), and the
// mean time of 20 small requests, each a new wget process and TCP connection (µs).
func BenchmarkNetworkPeer(b *testing.B) {
	e, ref := benchEngine(b, "qemu")
	ctx := context.Background()
	if _, err := e.CreateNetwork(ctx, NetworkCreateOptions{Name: "bench"}); err != nil {
		b.Fatal(err)
	}
	srv, err := e.Create(ctx, CreateOptions{Image: ref, Name: "srv", Networks: []NetworkOptions{{Network: "bench"}},
		// The files are written in the guest: the container's root is a disk, not a host directory.
		Cmd: []string{"sh", "-c", "mkdir -p /www && head -c 33554432 /dev/zero > /www/big && echo ok > /www/small && exec httpd -f -p 80 -h /www"}})
	if err != nil {
		b.Fatal(err)
	}
	cli, err := e.Create(ctx, CreateOptions{Image: ref, Name: "cli", Networks: []NetworkOptions{{Network: "bench"}},
		Cmd: []string{"sleep", "3600"}})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []*Container{srv, cli} {
		if err := e.Start(ctx, c.ID); err != nil {
			b.Fatal(err)
		}
		defer e.Remove(ctx, c.ID, RemoveOptions{Force: true})
	}
	run := func(sh string) string {
		// cs: the guest's uptime in centiseconds (busybox's date has no nanoseconds).
		s, err := e.Exec(ctx, cli.ID, ExecOptions{Cmd: []string{"sh", "-c", `cs() { cut -d' ' -f1 /proc/uptime | tr -d .; }; ` + sh}})
		if err != nil {
			b.Fatal(err)
		}
		var out strings.Builder
		var errOut strings.Builder
		errDone := make(chan struct{})
		go func() {
			defer close(errDone)
			buf := make([]byte, 4096)
			for {
				n, err := s.Stderr.Read(buf)
				errOut.Write(buf[:n])
				if err != nil {
					return
				}
			}
		}()
		buf := make([]byte, 4096)
		for {
			n, err := s.Stdout.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				break
			}
		}
		<-errDone
		if code, err := s.Wait(); err != nil || code != 0 {
			b.Fatalf("%s: exit %d %v: %s%s", sh, code, err, out.String(), errOut.String())
		}
		return strings.TrimSpace(out.String())
	}
	run(`for i in $(seq 60); do wget -q -O /dev/null http://srv/small && exit 0; sleep 1; done; exit 1`)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ns, err := strconv.ParseFloat(run(`t0=$(cs); wget -q -O /dev/null http://srv/big; t1=$(cs); echo $(((t1-t0)*10000000))`), 64)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(32<<20)/1e6/(ns/1e9), "peer-MB/s")
		us, err := strconv.ParseFloat(run(`t0=$(cs); for i in $(seq 20); do wget -q -O /dev/null http://srv/small; done; t1=$(cs); echo $(((t1-t0)*10000/20))`), 64)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(us, "peer-request-µs")
	}
}
