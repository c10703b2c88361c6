package bridge_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/app"
	"github.com/skiff-containers/skiff/app/apptest"
)

// cpuTime is the user + system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLogsOverBridge is the host-side ceiling of `skiff logs`: 100-byte lines from an
// in-memory backend through the services, the batching and the socket to the client.
func BenchmarkLogsOverBridge(b *testing.B) {
	fake := apptest.NewFake()
	sock := serveUnix(b, fake)
	c := dial(b, sock)
	ctx := context.Background()
	var ctr app.Container
	if err := c.Call(ctx, "Containers.Create", &ctr, app.RunRequest{Image: "busybox"}); err != nil {
		b.Fatal(err)
	}
	const lines, size = 20000, 100
	fake.AddLogs(ctr.ID, lines, size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start, cpu0 := time.Now(), cpuTime()
		sub, err := c.Subscribe(ctx, "Containers.SubscribeLogs", ctr.ID, app.LogQuery{})
		if err != nil {
			b.Fatal(err)
		}
		bytes := 0
		for {
			ev, ok, err := sub.Next(ctx)
			if err != nil || !ok {
				b.Fatal(err)
			}
			if ev.Name == sub.Name+":end" {
				break
			}
			ls, err := app.DecodeLogLines(ev.Data)
			if err != nil {
				b.Fatal(err)
			}
			for _, l := range ls {
				bytes += len(l.Data)
			}
		}
		b.ReportMetric(float64(bytes)/1e6/time.Since(start).Seconds(), "MB/s")
		// Server and client are this process: MB per CPU-second depends less on the machine's load.
		b.ReportMetric(float64(bytes)/1e6/(cpuTime()-cpu0).Seconds(), "MB/cpu-s")
	}
}
