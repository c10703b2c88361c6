package images

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/pgzip"
	"github.com/skiff-containers/skiff/internal/testutil"
)

// Benchmarks (`go test -bench . -run '^$' ./backend/images`) on a ~100 MB image with 4 layers of
// random, compressible files, served by an in-process registry:
//
//	BenchmarkPull/cold     registry → content store → unpacked rootfs, synced (a fresh store each time)
//	BenchmarkPull/present  Pull of an image already present (resolves the tag in the registry)
//	BenchmarkPull/ensure   Ensure with the default policy of an image already present (no network)
//	BenchmarkUnpack        in alternation, best round of each, nothing synced:
//	                       skiff   skiff's unpack of the 4 gzip layers from the content store
//	                       tar-x   GNU `tar -x` of the same filesystem flattened into one plain tar
//	                       apply   skiff's writer alone, on the 4 layers uncompressed
//	                       tar-xz  `tar -xzf` of the flat tar gzipped
//	                       ratio = skiff ÷ tar-x throughput; apply-ratio = apply ÷ tar-x;
//	                       ratio-vs-tar-xz = skiff ÷ tar-xz; *-cpu-ms: CPU time (user+sys), which a
//	                       busy machine disturbs less than wall time
//
// MB/s counts uncompressed file content.

const benchSize = 100 << 20

var (
	largeOnce sync.Once
	largeImg  v1.Image
	largeErr  error
)

func largeImage(b *testing.B) v1.Image {
	b.Helper()
	largeOnce.Do(func() { largeImg, largeErr = testutil.BuildLarge(benchSize, 4, 1) })
	if largeErr != nil {
		b.Fatal(largeErr)
	}
	return largeImg
}

func benchRegistry(b *testing.B) string {
	b.Helper()
	img := largeImage(b)
	srv := httptest.NewServer(testutil.RegistryHandler())
	b.Cleanup(srv.Close)
	host := srv.Listener.Addr().String()
	if err := testutil.PushImage(context.Background(), host+"/large:latest", img); err != nil {
		b.Fatal(err)
	}
	return host
}

func BenchmarkPull(b *testing.B) {
	host := benchRegistry(b)
	ref := host + "/large:latest"
	ctx := context.Background()
	var size int64
	b.Run("cold", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			dir := b.TempDir()
			s, err := Open(dir)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			img, err := s.Pull(ctx, ref, PullOptions{})
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			size = img.Size
			b.SetBytes(size)
			forceRemoveAll(dir)
			b.StartTimer()
		}
	})
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Pull(ctx, ref, PullOptions{}); err != nil {
		b.Fatal(err)
	}
	b.Run("present", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := s.Pull(ctx, ref, PullOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ensure", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := s.Ensure(ctx, ref, PullOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkUnpack(b *testing.B) {
	img := largeImage(b)
	ctx := context.Background()
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	mf, err := img.Manifest()
	if err != nil {
		b.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		b.Fatal(err)
	}
	layers, _ := img.Layers()
	for i, l := range layers {
		if err := s.fetchLayer(ctx, l, mf.Layers[i], func(Progress) {}); err != nil {
			b.Fatal(err)
		}
	}
	unpack := func(dir string) {
		if err := os.Mkdir(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		root, err := openFSRoot(dir, false)
		if err != nil {
			b.Fatal(err)
		}
		defer root.Close()
		ap := newApplier(root)
		ready := func(context.Context, int) error { return nil }
		if err := s.unpackLayers(ctx, ap, mf.Layers, cf.RootFS.DiffIDs, ready, func(Progress) {}); err != nil {
			b.Fatal(err)
		}
		if err := ap.finish(); err != nil {
			b.Fatal(err)
		}
	}
	work := b.TempDir()
	ref := filepath.Join(work, "ref")
	unpack(ref)
	size := treeSize(ref)
	flat := filepath.Join(work, "flat.tar")
	if out, err := exec.Command("tar", "-C", ref, "-cf", flat, ".").CombinedOutput(); err != nil {
		b.Fatalf("tar -c: %v: %s", err, out)
	}
	// Write the page cache back before timing, so neither side pays for the other's dirty pages.
	syncAll := func() { exec.Command("sync").Run() }

	// The same layers uncompressed, to time the writer alone, and the flat tar gzipped, for tar -xz.
	var raws []string
	for i := range layers {
		f, err := os.Open(s.blobPath(mf.Layers[i].Digest.String()))
		if err != nil {
			b.Fatal(err)
		}
		zr, err := pgzip.NewReader(f)
		if err != nil {
			b.Fatal(err)
		}
		p := filepath.Join(work, fmt.Sprintf("layer%d.tar", i))
		o, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(o, zr); err != nil {
			b.Fatal(err)
		}
		o.Close()
		f.Close()
		raws = append(raws, p)
	}
	applyRaw := func(dir string) {
		if err := os.Mkdir(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		root, err := openFSRoot(dir, false)
		if err != nil {
			b.Fatal(err)
		}
		defer root.Close()
		ap := newApplier(root)
		for _, p := range raws {
			f, err := os.Open(p)
			if err != nil {
				b.Fatal(err)
			}
			err = ap.applyLayer(ctx, bufio.NewReaderSize(f, 1<<20))
			f.Close()
			if err != nil {
				b.Fatal(err)
			}
		}
		if err := ap.finish(); err != nil {
			b.Fatal(err)
		}
	}
	if out, err := exec.Command("gzip", "-k", "-1", flat).CombinedOutput(); err != nil {
		b.Fatalf("gzip: %v: %s", err, out)
	}
	tarX := func(args ...string) func(dir string) {
		return func(dir string) {
			os.Mkdir(dir, 0o755)
			if out, err := exec.Command("tar", append([]string{"-C", dir}, args...)...).CombinedOutput(); err != nil {
				b.Fatalf("tar %v: %v: %s", args, err, out)
			}
		}
	}
	// The tools alternate, so all see the same machine load; the best round of each counts.
	tools := []struct {
		name    string
		run     func(dir string)
		best    time.Duration
		bestCPU time.Duration // user+sys of this process and its children
	}{
		{name: "skiff", run: unpack},                    // gzip layers → rootfs
		{name: "tar-x", run: tarX("-xf", flat)},         // flat uncompressed tar → rootfs
		{name: "apply", run: applyRaw},                  // skiff's writer on the uncompressed layers
		{name: "tar-xz", run: tarX("-xzf", flat+".gz")}, // flat gzip tar → rootfs (zlib in a gzip process)
	}
	for i := 0; i < b.N; i++ {
		for j := range tools {
			dir := filepath.Join(work, tools[j].name)
			forceRemoveAll(dir)
			syncAll()
			start, cpu0 := time.Now(), cpuTime()
			tools[j].run(dir)
			if d := time.Since(start); tools[j].best == 0 || d < tools[j].best {
				tools[j].best = d
			}
			if c := cpuTime() - cpu0; tools[j].bestCPU == 0 || c < tools[j].bestCPU {
				tools[j].bestCPU = c
			}
		}
	}
	for _, t := range tools {
		b.ReportMetric(float64(size)/1e6/t.best.Seconds(), t.name+"-MB/s")
	}
	for _, t := range tools {
		b.ReportMetric(float64(t.bestCPU.Milliseconds()), t.name+"-cpu-ms")
	}
	b.ReportMetric(tools[1].best.Seconds()/tools[0].best.Seconds(), "ratio")           // skiff vs tar -x
	b.ReportMetric(tools[1].best.Seconds()/tools[2].best.Seconds(), "apply-ratio")     // writer vs tar -x
	b.ReportMetric(tools[3].best.Seconds()/tools[0].best.Seconds(), "ratio-vs-tar-xz") // both decompress
}

// cpuTime is the CPU time (user+sys) of this process and its waited-for children so far.
func cpuTime() time.Duration {
	var self, kids syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	return time.Duration(self.Utime.Nano() + self.Stime.Nano() + kids.Utime.Nano() + kids.Stime.Nano())
}
