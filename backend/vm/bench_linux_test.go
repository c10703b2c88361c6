package vm_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/internal/testutil"
)

// BenchmarkBoot boots 10 VMs (amd64, 1 vCPU, 512 MiB, busybox rootfs on
// virtiofs, no network) one after another per iteration and reports the p50
// of start → agent hello and start → first byte of the workload `echo hi`
// (run with -benchtime 1x; `make bench` does).
func BenchmarkBoot(b *testing.B) {
	e := newEnv(b, "amd64")
	rootfs := testutil.BusyboxRootfs(b)
	const boots = 10
	var hello, first []time.Duration
	for n := 0; n < b.N; n++ {
		for i := 0; i < boots; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
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
			p, err := c.Run(ctx, agentproto.ProcessSpec{Args: []string{"echo", "hi"}})
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 1)
			if _, err := p.Stdout().Read(buf); err != nil {
				b.Fatal(err)
			}
			first = append(first, time.Since(t0))
			p.Close()
			m.Stop(ctx, true)
			cancel()
		}
	}
	b.ReportMetric(p50(hello).Seconds(), "s-hello-p50")
	b.ReportMetric(p50(first).Seconds(), "s-first-output-p50")
	b.ReportMetric(0, "ns/op")
	b.Logf("%s: start→hello %v; start→first output %v", e.hv.Name(), hello, first)
}

func p50(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
