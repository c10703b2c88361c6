//go:build linux

package engine

import (
	"context"
	"os"
	"path/filepath"
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
		Cmd: []string{"httpd", "-f", "-p", "80", "-h", "/www"}})
	if err != nil {
		b.Fatal(err)
	}
	_ = os.MkdirAll(filepath.Join(srv.RootFS, "www"), 0o755)
	_ = os.WriteFile(filepath.Join(srv.RootFS, "www", "big"), make([]byte, 32<<20), 0o644)
	_ = os.WriteFile(filepath.Join(srv.RootFS, "www", "small"), []byte("ok\n"), 0o644)
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
		s, err := e.Exec(ctx, cli.ID, ExecOptions{Cmd: []string{"sh", "-c", sh}})
		if err != nil {
			b.Fatal(err)
		}
		var out strings.Builder
		go func() {
			buf := make([]byte, 4096)
			for {
				if _, err := s.Stderr.Read(buf); err != nil {
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
		if code, err := s.Wait(); err != nil || code != 0 {
			b.Fatalf("%s: exit %d %v: %s", sh, code, err, out.String())
		}
		return strings.TrimSpace(out.String())
	}
	run(`for i in $(seq 60); do wget -q -O /dev/null http://srv/small && exit 0; sleep 1; done; exit 1`)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ns, err := strconv.ParseFloat(run(`t0=$(date +%s%N); wget -q -O /dev/null http://srv/big; t1=$(date +%s%N); echo $((t1-t0))`), 64)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(32<<20)/1e6/(ns/1e9), "peer-MB/s")
		us, err := strconv.ParseFloat(run(`t0=$(date +%s%N); for i in $(seq 20); do wget -q -O /dev/null http://srv/small; done; t1=$(date +%s%N); echo $(((t1-t0)/20000))`), 64)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(us, "peer-request-µs")
	}
}
