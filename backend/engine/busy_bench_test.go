//go:build linux

package engine

import (
	"context"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/images"
)

// busyScript is a busy busybox container: many short processes (fork, exec, page faults: much
// kernel and busybox code) and a compression, enough translated code to fill TCG's buffer.
const busyScript = `i=0; while [ $i -lt 60 ]; do ls -l /bin >/dev/null; echo $i | sed s/1/2/ | md5sum >/dev/null; i=$((i+1)); done; ` +
	`dd if=/dev/urandom bs=64k count=128 2>/dev/null | gzip -1 | wc -c >/dev/null`

// BenchmarkRunCPU: what a container costs in time, to weigh what trades CPU for memory (the size
// of TCG's code buffer): for `true` (the start) and for busyScript, each restored from the boot
// snapshot, the p50 of three runs of the wall time from create to exit and of the CPU time its VM
// (qemu, counted once reaped) used. The CPU figure holds up on a loaded machine; the wall time
// does not.
func BenchmarkRunCPU(b *testing.B) {
	e, ref := benchEngine(b, "qemu")
	ctx := context.Background()
	if _, err := e.Pull(ctx, ref, images.PullOptions{}); err != nil {
		b.Fatal(err)
	}
	for _, w := range []struct{ name, script string }{{"true", "true"}, {"busy", busyScript}} {
		b.Run(w.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				var wall, cpu []float64
				for j := 0; j < 3; j++ {
					child0 := cpuTime(syscall.RUSAGE_CHILDREN)
					t0 := time.Now()
					c, err := e.Create(ctx, CreateOptions{Image: ref, Cmd: []string{"sh", "-c", w.script}})
					if err != nil {
						b.Fatal(err)
					}
					if err := e.Start(ctx, c.ID); err != nil {
						b.Fatal(err)
					}
					if code, err := e.Wait(ctx, c.ID); err != nil || code != 0 {
						b.Fatalf("wait: %d %v", code, err)
					}
					wall = append(wall, time.Since(t0).Seconds())
					if err := e.Remove(ctx, c.ID, RemoveOptions{Force: true}); err != nil {
						b.Fatal(err)
					}
					cpu = append(cpu, (cpuTime(syscall.RUSAGE_CHILDREN) - child0).Seconds())
				}
				b.ReportMetric(median(wall), "wall-p50-s")
				b.ReportMetric(median(cpu), "vm-cpu-p50-s")
			}
		})
	}
}

func median(v []float64) float64 {
	sort.Float64s(v)
	return v[len(v)/2]
}
