//go:build linux

package engine

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/images"
	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/backend/vm/qemu"
	"github.com/skiff-containers/skiff/internal/testutil"
)

// BenchmarkKernels compares guest kernels in one run (`make bench`): for each kernel bundle, the p50
// of 5 bare boots (QEMU start to the first byte of a do-nothing init, the same machine a container
// gets), and of 5 `run --rm true` (create + start + wait with AutoRemove) booted cold
// (SKIFF_NO_SNAPSHOTS) and restored from the shape's boot snapshot, each after a first run that pulls
// the image and builds the initramfs (and the snapshot). It reports each kernel's figures, their
// ratios to its own bare boot and to the Debian kernel's. The kernels are SKIFF_BENCH_KERNELS
// ("name=dir,name=dir", dirs holding <arch>/ bundles), by default debian=_build/kernel-debian
// (`make kernel-debian`) and skiff=_build/kernel (`make kernel`); a kernel without a bundle is left out.
func BenchmarkKernels(b *testing.B) {
	kernels := benchKernels(b)
	if len(kernels) == 0 {
		b.Skip("no kernel bundles (make kernel kernel-debian)")
	}
	initBin := bareInit(b)
	arch := vm.HostArch()
	bare := map[string]time.Duration{}
	var lines []string
	for _, k := range kernels {
		bu, err := vm.LoadBundle(filepath.Join(k.dir, arch))
		if err != nil {
			b.Fatal(err)
		}
		bare[k.name] = p50d(benchBareBoots(b, bu, initBin))
		cold := p50d(benchRunRmTrue(b, k.dir, true))
		restored := p50d(benchRunRmTrue(b, k.dir, false))
		b.ReportMetric(bare[k.name].Seconds(), k.name+"-bare-s")
		b.ReportMetric(cold.Seconds(), k.name+"-cold-s")
		b.ReportMetric(restored.Seconds(), k.name+"-restored-s")
		b.ReportMetric(cold.Seconds()/bare[k.name].Seconds(), k.name+"-cold/bare")
		b.ReportMetric(restored.Seconds()/bare[k.name].Seconds(), k.name+"-restored/bare")
		if d, ok := bare["debian"]; ok && k.name != "debian" {
			b.ReportMetric(cold.Seconds()/d.Seconds(), k.name+"-cold/debian-bare")
			b.ReportMetric(restored.Seconds()/d.Seconds(), k.name+"-restored/debian-bare")
		}
		lines = append(lines, fmt.Sprintf("%s (%s): bare %v, cold %v, restored %v", k.name, bu.Manifest.Version, bare[k.name], cold, restored))
	}
	b.ReportMetric(0, "ns/op")
	load, _ := os.ReadFile("/proc/loadavg")
	b.Logf("%s; loadavg %s", strings.Join(lines, "; "), strings.TrimSpace(string(load)))
}

type benchKernel struct{ name, dir string }

// benchKernels are the kernels BenchmarkKernels compares; debian goes first, so that the others'
// ratios to its bare boot can be reported.
func benchKernels(b *testing.B) []benchKernel {
	spec := os.Getenv("SKIFF_BENCH_KERNELS")
	if spec == "" {
		spec = "debian=../../_build/kernel-debian,skiff=../../_build/kernel"
	}
	var ks []benchKernel
	for _, kv := range strings.Split(spec, ",") {
		name, dir, ok := strings.Cut(kv, "=")
		if !ok || name == "" || dir == "" {
			b.Fatalf("SKIFF_BENCH_KERNELS: %q is not name=dir", kv)
		}
		if _, err := vm.LoadBundle(filepath.Join(dir, vm.HostArch())); err != nil {
			b.Logf("kernel %s left out: %v", name, err)
			continue
		}
		ks = append(ks, benchKernel{name, dir})
	}
	sort.SliceStable(ks, func(i, j int) bool { return ks[i].name == "debian" && ks[j].name != "debian" })
	return ks
}

// bareInitSource is the do-nothing init: one line on the console, then a reboot, which ends QEMU
// (-no-reboot).
const bareInitSource = `#include <sys/reboot.h>
#include <unistd.h>
int main(void) {
	static const char msg[] = "bare init: up\n";
	write(1, msg, sizeof msg - 1);
	reboot(RB_AUTOBOOT);
	return 0;
}
`

const bareInitMarker = "bare init: up"

// bareInit compiles the do-nothing init, a static C program (a Go one would add its runtime's start).
func bareInit(b *testing.B) []byte {
	dir := b.TempDir()
	src := filepath.Join(dir, "init.c")
	if err := os.WriteFile(src, []byte(bareInitSource), 0o644); err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(dir, "init")
	if o, err := exec.Command("gcc", "-static", "-Os", "-s", "-o", out, src).CombinedOutput(); err != nil {
		b.Skipf("cannot build the do-nothing init (gcc and libc6-dev, which make setup installs): %v\n%s", err, o)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// benchBareBoots boots bu five times with the do-nothing init and returns the times from Start to
// its line on the console.
func benchBareBoots(b *testing.B, bu *vm.Bundle, initBin []byte) []time.Duration {
	hv, err := qemu.New(qemu.Options{CacheDir: b.TempDir()})
	if err != nil {
		b.Skipf("no hypervisor: %v", err)
	}
	dir := b.TempDir()
	initrd, err := vm.BuildInitramfsWithInit(context.Background(), bu, initBin, filepath.Join(dir, "cache"))
	if err != nil {
		b.Fatal(err)
	}
	var ds []time.Duration
	for i := 0; i < 6; i++ { // the first boot extracts the PVH kernel: not counted
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		state := filepath.Join(dir, fmt.Sprintf("m%d", i))
		spec := vm.MachineSpec{ID: fmt.Sprintf("bare-%d", i), Arch: bu.Manifest.Arch, CPUs: vmCPUs(0),
			MemoryMiB: vmMemoryMiB(0), Kernel: bu.KernelPath(), Initramfs: initrd, StateDir: state,
			ConsoleLog: state + ".console", Network: vm.Network{Mode: vm.NetworkNone}}
		t0 := time.Now()
		m, err := hv.Start(ctx, spec)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if con, _ := os.ReadFile(spec.ConsoleLog); bytes.Contains(con, []byte(bareInitMarker)) {
				break
			}
			select {
			case <-m.Done():
				con, _ := os.ReadFile(spec.ConsoleLog)
				b.Fatalf("%s: the machine ended before init's line: %v\n%s", bu.Dir, m.Err(), con)
			case <-ctx.Done():
				b.Fatalf("%s: no line from init: %v", bu.Dir, ctx.Err())
			case <-time.After(2 * time.Millisecond):
			}
		}
		if i > 0 {
			ds = append(ds, time.Since(t0))
		}
		_ = m.Stop(ctx, true)
		cancel()
	}
	return ds
}

// benchRunRmTrue runs `true` with AutoRemove six times on an engine booting the bundles in kdir,
// cold or from boot snapshots, and returns the times of the last five.
func benchRunRmTrue(b *testing.B, kdir string, cold bool) []time.Duration {
	hv, err := qemu.New(qemu.Options{CacheDir: b.TempDir(), NoSnapshots: cold})
	if err != nil {
		b.Skipf("no hypervisor: %v", err)
	}
	cache := b.TempDir()
	kernel := func(ctx context.Context, arch string) (*vm.Bundle, string, error) {
		bu, err := vm.ResolveKernel(ctx, vm.KernelOptions{Arch: arch, Path: filepath.Join(kdir, arch)})
		if err != nil {
			return nil, "", err
		}
		initrd, err := vm.BuildInitramfs(ctx, bu, cache)
		return bu, initrd, err
	}
	host := testutil.Registry(b)
	home := b.TempDir()
	st, err := images.Open(filepath.Join(home, "images"))
	if err != nil {
		b.Fatal(err)
	}
	e, err := Open(context.Background(), Config{Home: filepath.Join(home, "engine"), Hypervisor: hv, Images: st, Kernel: kernel})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close(context.Background())
	ctx := context.Background()
	ref := host + "/busybox:latest"
	if _, err := e.Pull(ctx, ref, images.PullOptions{}); err != nil {
		b.Fatal(err)
	}
	var ds []time.Duration
	for i := 0; i < 6; i++ {
		t0 := time.Now()
		c, err := e.Create(ctx, CreateOptions{Image: ref, Cmd: []string{"true"}, AutoRemove: true})
		if err != nil {
			b.Fatal(err)
		}
		if err := e.Start(ctx, c.ID); err != nil {
			b.Fatal(err)
		}
		if code, err := e.Wait(ctx, c.ID); err != nil || code != 0 {
			b.Fatalf("%s: wait: %d %v", kdir, code, err)
		}
		if i > 0 {
			ds = append(ds, time.Since(t0))
		}
	}
	return ds
}

func p50d(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
