//go:build linux

package agent_test

import (
	"io"
	"sort"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
)

// BenchmarkStdoutThroughput: bytes a process writes to stdout, through the
// agent and the protocol over a unix socket, to the client. Target ≥ 500 MB/s.
func BenchmarkStdoutThroughput(b *testing.B) {
	a := startAgent(b)
	_, lines := a.runWorkload(b, agentproto.ProcessSpec{Args: []string{"sh", "-c", "echo ready; exec sleep 100000"}})
	lines.waitFor(b, "ready")
	const mib = 256
	b.SetBytes(mib << 20)
	buf := make([]byte, 1<<20)
	sink := struct{ io.Writer }{io.Discard} // no ReaderFrom: io.Discard's reads 8 KiB at a time
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		p, err := a.c.Exec(ctxT(b), agentproto.ProcessSpec{Args: []string{"dd", "if=/dev/zero", "bs=1M", "count=256"}})
		if err != nil {
			b.Fatal(err)
		}
		go io.Copy(io.Discard, p.Stderr())
		n, err := io.CopyBuffer(sink, p.Stdout(), buf)
		if err != nil || n != mib<<20 {
			b.Fatalf("read %d bytes: %v", n, err)
		}
		if st, err := p.Wait(); err != nil || st.Code != 0 {
			b.Fatalf("dd: %+v %v", st, err)
		}
	}
	b.ReportMetric(float64(b.N)*mib*(1<<20)/1e6/time.Since(start).Seconds(), "MB/s")
}

// BenchmarkExecRoundTrip: Exec of `true` to its exit status, 50 round trips
// per iteration (so that `-benchtime 1x` still gives a median). Target
// p50 < 5 ms.
func BenchmarkExecRoundTrip(b *testing.B) {
	a := startAgent(b)
	_, lines := a.runWorkload(b, agentproto.ProcessSpec{Args: []string{"sh", "-c", "echo ready; exec sleep 100000"}})
	lines.waitFor(b, "ready")
	const perIter = 50
	durs := make([]time.Duration, 0, b.N*perIter)
	b.ResetTimer()
	for i := 0; i < b.N*perIter; i++ {
		t0 := time.Now()
		p, err := a.c.Exec(ctxT(b), agentproto.ProcessSpec{Args: []string{"true"}})
		if err != nil {
			b.Fatal(err)
		}
		go io.Copy(io.Discard, p.Stderr())
		io.Copy(io.Discard, p.Stdout())
		if st, err := p.Wait(); err != nil || st.Code != 0 {
			b.Fatalf("true: %+v %v", st, err)
		}
		durs = append(durs, time.Since(t0))
	}
	sort.Slice(durs, func(i, j int) bool { return durs[i] < durs[j] })
	b.ReportMetric(float64(durs[len(durs)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(durs[len(durs)*99/100].Microseconds())/1000, "p99-ms")
}
