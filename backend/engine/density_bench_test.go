//go:build linux

package engine

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/images"
)

// BenchmarkIdleDensity: what idle busybox containers cost the host, per container, with 1, 5 and
// 10 of them running: the sum of their VMs' host memory (Stats.HostMemory: qemu's and virtiofsd's
// own pages plus each VM's whole guest RAM) and of the backend's spare VMs (SpareMemory) over
// their number, each figure taken once every container has idled 10 s.
func BenchmarkIdleDensity(b *testing.B) {
	e, ref := benchEngine(b, "qemu")
	ctx := context.Background()
	if _, err := e.Pull(ctx, ref, images.PullOptions{}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var ids []string
		for _, n := range []int{1, 5, 10} {
			for len(ids) < n {
				c, err := e.Create(ctx, CreateOptions{Image: ref, Cmd: []string{"sleep", "100000"}})
				if err != nil {
					b.Fatal(err)
				}
				ids = append(ids, c.ID)
				if err := e.Start(ctx, c.ID); err != nil {
					b.Fatal(err)
				}
			}
			time.Sleep(10 * time.Second)
			var total, guest uint64
			for _, id := range ids {
				st, err := e.Stats(ctx, id)
				if err != nil {
					b.Fatal(err)
				}
				if st.HostMemory == 0 {
					b.Fatalf("container %s: no host memory figure", id)
				}
				total += st.HostMemory
				guest += st.MemoryUsage
			}
			var spares uint64 // the spare VM the backend keeps ready is the engine's too
			if sm, ok := e.hv.(interface{ SpareMemory() (uint64, error) }); ok {
				mem, err := sm.SpareMemory()
				if err != nil {
					b.Fatal(err)
				}
				spares = mem
				total += mem
			}
			b.Logf("%d idle containers: %.1f MB host memory each, spare VMs included (%.1f MB in all); guest view: %.1f MB each",
				n, float64(total)/float64(n)/1e6, float64(spares)/1e6, float64(guest)/float64(n)/1e6)
			b.ReportMetric(float64(total)/float64(n)/1e6, fmt.Sprintf("host-MB/ctr@%d", n))
		}
		for _, id := range ids {
			_ = e.Remove(ctx, id, RemoveOptions{Force: true})
		}
	}
}
