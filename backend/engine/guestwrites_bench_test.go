//go:build linux

package engine

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/images"
)

// BenchmarkGuestWrites: where the pages an idle restored guest wrote go, by what the guest uses
// them for. A restored VM maps its snapshot's RAM copy-on-write, so each page its guest writes
// is one of its own on the host: the written pages are those of qemu's guest RAM mapping that
// are anonymous (/proc/PID/pagemap), classed by the guest's own /proc/kpageflags (page cache,
// slab, a process's anonymous memory, page tables, free, kernel memory marked reserved (the
// kernel's own data, the first per-CPU chunk, struct pages), kernel compound pages (large
// kmallocs), or kernel memory with no flag: vmalloc, stacks, device rings and request arrays).
// One busybox `sleep` container, read 12 s after its start. With SKIFF_BENCH_GUEST_DUMP=<a
// directory the test user can write> the guest's /proc meminfo, slabinfo, vmallocinfo, vmstat,
// buddyinfo, zoneinfo, diskstats and cmdline are saved there, read just after its kpageflags.
func BenchmarkGuestWrites(b *testing.B) {
	e, ref := benchEngine(b, "qemu")
	ctx := context.Background()
	if _, err := e.Pull(ctx, ref, images.PullOptions{}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		before := childQEMUs()
		c, err := e.Create(ctx, CreateOptions{Image: ref, Cmd: []string{"sleep", "100000"}})
		if err != nil {
			b.Fatal(err)
		}
		if err := e.Start(ctx, c.ID); err != nil {
			b.Fatal(err)
		}
		time.Sleep(12 * time.Second)
		pid := 0
		for p := range childQEMUs() {
			if !before[p] {
				pid = p
			}
		}
		if pid == 0 {
			b.Fatal("no new qemu among this process's children")
		}
		written, err := writtenGuestPages(pid)
		if err != nil {
			b.Fatal(err)
		}
		kp, err := guestFile(ctx, e, c.ID, "/proc/kpageflags")
		if err != nil || len(kp) < 8*len(written) {
			b.Fatalf("reading the guest's /proc/kpageflags: %v, %d bytes for %d pages", err, len(kp), len(written))
		}
		if dir := os.Getenv("SKIFF_BENCH_GUEST_DUMP"); dir != "" {
			for _, f := range []string{"meminfo", "slabinfo", "vmallocinfo", "vmstat", "buddyinfo", "cmdline", "zoneinfo", "diskstats"} {
				if data, err := guestFile(ctx, e, c.ID, "/proc/"+f); err == nil {
					_ = os.WriteFile(filepath.Join(dir, f), data, 0o644)
				}
			}
		}
		mb := map[string]float64{}
		total := 0.0
		for pfn, w := range written {
			if w {
				mb[pageClass(binary.LittleEndian.Uint64(kp[8*pfn:]))] += 4096 / 1e6
				total += 4096 / 1e6
			}
		}
		var classes []string
		for k := range mb {
			classes = append(classes, k)
		}
		sort.Slice(classes, func(i, j int) bool { return mb[classes[i]] > mb[classes[j]] })
		for _, k := range classes {
			b.Logf("%-14s %5.2f MB", k, mb[k])
			b.ReportMetric(mb[k], k+"-MB")
		}
		b.Logf("written in all: %.2f MB", total)
		b.ReportMetric(total, "written-MB")
		_ = e.Remove(ctx, c.ID, RemoveOptions{Force: true})
	}
}

// guestFile reads a file of the guest (exec cat in container id).
func guestFile(ctx context.Context, e *Engine, id, path string) ([]byte, error) {
	s, err := e.Exec(ctx, id, ExecOptions{Cmd: []string{"cat", path}})
	if err != nil {
		return nil, err
	}
	go io.Copy(io.Discard, s.Stderr)
	data, _ := io.ReadAll(s.Stdout)
	if code, err := s.Wait(); err != nil || code != 0 {
		return nil, fmt.Errorf("cat %s: exit %d, %v", path, code, err)
	}
	return data, nil
}

// pageClass names what a guest page is used for from its kpageflags
// (Documentation/admin-guide/mm/pagemap.rst).
func pageClass(f uint64) string {
	bit := func(n uint) bool { return f&(1<<n) != 0 }
	switch {
	case bit(10):
		return "free"
	case bit(7):
		return "slab"
	case bit(26):
		return "pagetable"
	case bit(12):
		return "anon"
	case bit(5):
		return "pagecache"
	case bit(32):
		return "kernel-reserved"
	case bit(15) || bit(16):
		return "kernel-compound"
	default:
		return "kernel"
	}
}

// writtenGuestPages says, per guest page (its physical page number: the
// guest RAM starts at address 0 and is one block below 4 GiB), whether qemu
// pid holds its own copy of it: present in its guest RAM mapping and not
// the file's (pagemap bits 63 and 61).
func writtenGuestPages(pid int) ([]bool, error) {
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return nil, err
	}
	for _, l := range strings.Split(string(maps), "\n") {
		if !strings.Contains(l, "skiff-guest-ram") {
			continue
		}
		lo, hi, _ := strings.Cut(strings.Fields(l)[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("qemu %d: a mapping line %q", pid, l)
		}
		pm, err := os.Open(fmt.Sprintf("/proc/%d/pagemap", pid))
		if err != nil {
			return nil, err
		}
		defer pm.Close()
		n := (end - start) / 4096
		buf := make([]byte, 8*n)
		if _, err := pm.ReadAt(buf, int64(start/4096*8)); err != nil {
			return nil, fmt.Errorf("qemu %d: reading its pagemap: %w", pid, err)
		}
		w := make([]bool, n)
		for i := range w {
			v := binary.LittleEndian.Uint64(buf[8*i:])
			w[i] = v&(1<<63) != 0 && v&(1<<61) == 0
		}
		return w, nil
	}
	return nil, fmt.Errorf("qemu %d maps no skiff-guest-ram", pid)
}

// childQEMUs are this process's qemu children restored from a snapshot.
func childQEMUs() map[int]bool {
	m := map[int]bool{}
	ents, _ := os.ReadDir("/proc")
	for _, d := range ents {
		p, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		i := strings.LastIndexByte(string(st), ')')
		if i < 0 || !strings.Contains(string(cmd), "qemu-system") || !strings.Contains(string(cmd), "-incoming") {
			continue
		}
		if f := strings.Fields(string(st[i+1:])); len(f) > 1 && f[1] == strconv.Itoa(os.Getpid()) {
			m[p] = true
		}
	}
	return m
}
