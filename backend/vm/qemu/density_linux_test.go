package qemu_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/backend/vm/qemu"
	"github.com/skiff-containers/skiff/internal/testutil"
)

// memUse is one process's memory from /proc/PID/smaps_rollup, in KiB.
type memUse struct{ rss, pss, pssAnon, pssFile, pssShmem int64 }

func readMemUse(t testing.TB, pid string) memUse {
	t.Helper()
	b, err := os.ReadFile("/proc/" + pid + "/smaps_rollup")
	if err != nil {
		t.Fatal(err)
	}
	var u memUse
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "Rss:":
			u.rss = n
		case "Pss:":
			u.pss = n
		case "Pss_Anon:":
			u.pssAnon = n
		case "Pss_File:":
			u.pssFile = n
		case "Pss_Shmem:":
			u.pssShmem = n
		}
	}
	return u
}

// restoredVMs are n VMs of an env with a boot-snapshot cache of its own (Cache): the first builds
// the snapshot and every one is restored from it (each console says so).
type restoredVMs struct {
	Cache    string
	Machines []vm.Machine
	Clients  []*agentproto.Client
	Specs    []vm.MachineSpec
}

// startRestored starts n VMs of spec(e, i) on a new env with a snapshot cache of its own, each
// answering Hello, each restored from the snapshot the first one built.
func startRestored(t *testing.T, ctx context.Context, n int, spec func(e *env, i int) vm.MachineSpec) restoredVMs {
	t.Helper()
	r := restoredVMs{Cache: t.TempDir()}
	e := newEnv(t, "amd64", func(o *qemu.Options) { o.CacheDir = r.Cache })
	for i := 0; i < n; i++ {
		s := spec(e, i)
		m, c := e.start(t, ctx, s)
		if _, err := c.Hello(ctx); err != nil {
			t.Fatal(err)
		}
		if console, _ := os.ReadFile(s.ConsoleLog); !strings.Contains(string(console), "restored from boot snapshot") {
			t.Fatalf("%s was not restored from the snapshot:\n%s", s.ID, console)
		}
		r.Machines, r.Clients, r.Specs = append(r.Machines, m), append(r.Clients, c), append(r.Specs, s)
	}
	return r
}

// savedRAM is the space the snapshot's RAM file takes (allocated blocks: it is sparse); the cache
// must hold exactly one snapshot.
func (r restoredVMs) savedRAM(t *testing.T) uint64 {
	t.Helper()
	rams, _ := filepath.Glob(filepath.Join(r.Cache, "snapshots", "*", "ram"))
	if len(rams) != 1 {
		t.Fatalf("snapshot RAM files: %q", rams)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(rams[0], &st); err != nil {
		t.Fatal(err)
	}
	return uint64(st.Blocks) * 512
}

// TestHostMemory: a restored VM reports what it costs the host — at least
// the guest RAM it holds (the snapshot's RAM is loaded into its own memfd,
// which qemu maps only in part, so PSS alone would miss most of it) and
// qemu's own pages — and an ended one reports an error, not a figure.
func TestHostMemory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rootfs := testutil.BusyboxRootfs(t)
	r := startRestored(t, ctx, 2, func(e *env, i int) vm.MachineSpec {
		return e.spec(t, fmt.Sprint("hm", i), vm.Share{Tag: vm.RootShareTag, HostPath: rootfs})
	})
	saved := r.savedRAM(t)
	m, s := r.Machines[1], r.Specs[1]
	got, err := m.(vm.HostMemoryReporter).HostMemory()
	if err != nil {
		t.Fatal(err)
	}
	u := readMemUse(t, qemuPid(t, s.StateDir))
	own := uint64(u.pssAnon+u.pssFile) << 10
	t.Logf("host memory %d KiB: saved RAM %d KiB, qemu %+v KiB", got>>10, saved>>10, u)
	// Free page reporting may hand a few of the restored RAM's pages back (they leave the memfd):
	// a margin of 16 MiB, far less than the saved RAM a count without the memfd would miss.
	if got+16<<20 < saved+own {
		t.Errorf("host memory %d KiB, less than the saved RAM (%d KiB) and qemu's own pages (%d KiB)", got>>10, saved>>10, own>>10)
	}
	// Each memfd counted once (qemu holds the guest RAM's twice); an idle
	// guest writes little new memory, virtiofsd and the ring are small.
	if got > saved+own+32<<20 {
		t.Errorf("host memory %d KiB, more than the saved RAM and qemu's pages by over 32 MiB", got>>10)
	}
	if err := m.Stop(ctx, true); err != nil {
		t.Fatal(err)
	}
	if n, err := m.(vm.HostMemoryReporter).HostMemory(); err == nil {
		t.Errorf("a stopped machine's host memory: %d, no error", n)
	}
}

// TestFreePageReporting: memory a restored guest frees goes back to the
// host (the balloon's free page reporting discards it from the guest RAM
// memfd): 128 MiB written to a tmpfs and removed leave the VM's host
// memory where it was.
func TestFreePageReporting(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rootfs := testutil.BusyboxRootfs(t)
	r := startRestored(t, ctx, 2, func(e *env, i int) vm.MachineSpec {
		if len(e.bundle.Manifest.Modules) > 0 && !slices.Contains(e.bundle.Manifest.Modules, "virtio_balloon.ko") {
			t.Skip("the kernel bundle has no virtio_balloon module: rebuild it (make kernel)")
		}
		return e.spec(t, fmt.Sprint("fpr", i), vm.Share{Tag: vm.RootShareTag, HostPath: rootfs})
	})
	m, c := r.Machines[1], r.Clients[1]
	run := func(script string) {
		t.Helper()
		p, err := c.Run(ctx, agentproto.ProcessSpec{Args: []string{"sh", "-c", script}})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if out, errOut, code := output(t, p); code != 0 {
			t.Fatalf("%s: exit %d: %s%s", script, code, out, errOut)
		}
	}
	host := func() uint64 {
		n, err := m.(vm.HostMemoryReporter).HostMemory()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	run("mkdir -p /fill && mount -t tmpfs -o size=256m tmpfs /fill")
	before := host()
	run("dd if=/dev/zero of=/fill/zeros bs=1M count=128 2>/dev/null")
	full := host()
	if full < before+100<<20 {
		t.Fatalf("host memory %d KiB with 128 MiB in the guest's tmpfs, %d KiB before", full>>10, before>>10)
	}
	run("rm /fill/zeros")
	var now uint64
	for end := time.Now().Add(60 * time.Second); time.Now().Before(end); time.Sleep(time.Second) {
		if now = host(); now < before+32<<20 {
			t.Logf("host memory: %d KiB before, %d KiB full, %d KiB after", before>>10, full>>10, now>>10)
			return
		}
	}
	t.Errorf("host memory %d KiB a minute after the guest freed 128 MiB (%d KiB before, %d KiB full)", now>>10, before>>10, full>>10)
}
