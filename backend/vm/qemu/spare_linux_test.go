package qemu_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/backend/vm/qemu"
)

// TestSpareVM: once a VM of a shape was restored, the next one's qemu is
// launched ahead, paused with its device state loaded, and the next start
// of that shape adopts it (the VM's qemu.pid is the spare's process): its
// agent answers, its disks are its root, its network serves DNS. A spare
// whose qemu died is skipped; a spec with a share (no copy-on-write RAM)
// restores as before and leaves the spare; a spare of a snapshot built
// again is skipped; an unused spare ends after its idle time;
// SKIFF_NO_SPARE_VM=1 launches none; Close ends the spare.
func TestSpareVM(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	cache := t.TempDir()
	e := newEnv(t, "amd64", func(o *qemu.Options) { o.CacheDir, o.Log = cache, zap.New(core) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir := t.TempDir()
	image, upper := diskImage(t, ctx, dir), upperDisk(t, dir)
	spec := func(name string) vm.MachineSpec {
		s := e.spec(t, name)
		s.Boot.Root, s.Boot.Hostname = agentproto.RootFromDisks, name
		s.Disks = []vm.Disk{{ID: agentproto.ImageDiskID, Path: image, ReadOnly: true}, {ID: agentproto.UpperDiskID, Path: upper}}
		s.Network = vm.Network{Mode: vm.NetworkNAT}
		return s
	}
	// spareReady waits for the n-th spare to be ready and returns its pid.
	spareReady := func(t *testing.T, n int) int {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if r := logs.FilterMessage("spare VM ready").All(); len(r) >= n {
				return int(r[n-1].ContextMap()["pid"].(int64))
			}
		}
		t.Fatalf("no spare VM #%d ready", n)
		return 0
	}
	qemuPid := func(t *testing.T, s vm.MachineSpec) int {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(s.StateDir, "qemu.pid"))
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := strconv.Atoi(strings.Fields(string(data))[0])
		return pid
	}
	// use runs a script in a started VM and stops it gracefully.
	use := func(t *testing.T, s vm.MachineSpec, m vm.Machine, c *agentproto.Client, script, want string) {
		t.Helper()
		info, err := c.Hello(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Hostname != s.Boot.Hostname {
			t.Errorf("hostname %q, want %q", info.Hostname, s.Boot.Hostname)
		}
		p, err := c.Run(ctx, agentproto.ProcessSpec{Args: []string{"sh", "-c", script}})
		if err != nil {
			t.Fatal(err)
		}
		out, errOut, code := output(t, p)
		p.Close()
		if code != 0 || out != want {
			t.Errorf("%s: exit %d, %q (%s), want %q", script, code, out, errOut, want)
		}
		if err := vm.Shutdown(ctx, m, nil); err != nil {
			t.Fatal(err)
		}
		noLeftovers(t, s.StateDir)
	}
	const look = "grep ' / ' /proc/mounts | cut -d' ' -f1; cat /var/lib/pg/PG_VERSION; nslookup gateway.skiff.internal 10.0.2.3 | grep -c 10.0.2.2; "
	restoredFromSpare := func() int {
		return len(logs.FilterMessage("restored from boot snapshot").FilterField(zap.Bool("spare", true)).All())
	}

	var pid int
	t.Run("first start launches a spare", func(t *testing.T) {
		s := spec("first")
		m, c := e.start(t, ctx, s)
		use(t, s, m, c, look+"echo first > /first.txt", "overlay\n15\n1\n")
		pid = spareReady(t, 1)
		if restoredFromSpare() != 0 {
			t.Error("the first start claims a spare")
		}
		if n, err := e.hv.(interface{ SpareMemory() (uint64, error) }).SpareMemory(); err != nil || n < 1<<20 {
			t.Errorf("SpareMemory with a spare ready: %d bytes, %v; want its qemu's memory", n, err)
		}
	})
	t.Run("next start adopts it", func(t *testing.T) {
		s := spec("second")
		m, c := e.start(t, ctx, s)
		if got := qemuPid(t, s); got != pid {
			t.Errorf("the VM's qemu is %d, the spare was %d", got, pid)
		}
		if n := restoredFromSpare(); n != 1 {
			t.Errorf("%d starts from a spare, want 1", n)
		}
		use(t, s, m, c, look+"cat /first.txt", "overlay\n15\n1\nfirst\n")
		console, _ := os.ReadFile(s.ConsoleLog)
		if !strings.Contains(string(console), "restored from boot snapshot") {
			t.Errorf("console log of the adopted VM:\n%s", console)
		}
		if q, err := os.ReadFile(filepath.Join(s.StateDir, "qemu.log")); err != nil {
			t.Errorf("no qemu.log: %v", err)
		} else {
			t.Logf("qemu.log: %q", q)
		}
	})
	t.Run("a dead spare is skipped", func(t *testing.T) {
		dead := spareReady(t, 2)
		t.Logf("spare PSS: %s", pss(dead))
		if err := syscall.Kill(dead, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 100 && alive(dead); i++ {
			time.Sleep(20 * time.Millisecond)
		}
		s := spec("third")
		m, c := e.start(t, ctx, s)
		if got := qemuPid(t, s); got == dead {
			t.Errorf("the VM's qemu is the dead spare's %d", got)
		}
		if n := restoredFromSpare(); n != 1 {
			t.Errorf("%d starts from a spare, want still 1", n)
		}
		if len(logs.FilterMessage("spare VM skipped").All()) != 1 {
			t.Error("no log of the skipped spare")
		}
		use(t, s, m, c, look+"cat /first.txt", "overlay\n15\n1\nfirst\n")
	})
	t.Run("a spec with a share restores as before", func(t *testing.T) {
		spare := spareReady(t, 3)
		data := t.TempDir()
		os.WriteFile(filepath.Join(data, "d.txt"), []byte("data\n"), 0o644)
		s := spec("shares")
		s.Shares = []vm.Share{{Tag: "data", HostPath: data}}
		m, c := e.start(t, ctx, s)
		if got := qemuPid(t, s); got == spare {
			t.Error("a VM with a share adopted the spare")
		}
		if err := c.Mount(ctx, agentproto.MountSpec{Tag: "data", Target: "/data"}); err != nil {
			t.Fatal(err)
		}
		use(t, s, m, c, look+"cat /data/d.txt", "overlay\n15\n1\ndata\n")
		if !alive(spare) {
			t.Error("the spare did not outlive a start it does not fit")
		}
	})
	t.Run("a spare of a replaced snapshot is skipped", func(t *testing.T) {
		old := spareReady(t, 3)
		metas, _ := filepath.Glob(filepath.Join(cache, "snapshots", "*", "meta.json"))
		if len(metas) != 1 {
			t.Fatalf("snapshots: %q", metas)
		}
		os.RemoveAll(filepath.Dir(metas[0])) // the next start builds it again
		s := spec("rebuilt")
		m, c := e.start(t, ctx, s)
		if got := qemuPid(t, s); got == old {
			t.Error("a VM adopted the spare of the replaced snapshot")
		}
		if alive(old) {
			t.Error("the spare of the replaced snapshot still runs")
		}
		use(t, s, m, c, look+"cat /first.txt", "overlay\n15\n1\nfirst\n")
	})
	t.Run("an unused spare ends", func(t *testing.T) {
		spareReady(t, 4)
		qemu.SetSpareIdle(e.hv, time.Second)
		s := spec("idle")
		m, c := e.start(t, ctx, s) // adopts the spare, launches one that waits a second
		use(t, s, m, c, "true", "")
		idle := spareReady(t, 5)
		time.Sleep(1500 * time.Millisecond)
		if alive(idle) {
			t.Errorf("spare %d still runs after its idle time", idle)
		}
		noSpares(t)
	})
	t.Run("SKIFF_NO_SPARE_VM=1 launches none", func(t *testing.T) {
		t.Setenv("SKIFF_NO_SPARE_VM", "1")
		core, logs := observer.New(zapcore.DebugLevel)
		off := newEnv(t, "amd64", func(o *qemu.Options) { o.CacheDir, o.Log = cache, zap.New(core) })
		for _, name := range []string{"off1", "off2"} {
			s := spec(name) // e's kernel and initramfs: the same snapshot
			m, c := off.start(t, ctx, s)
			use(t, s, m, c, "true", "")
		}
		time.Sleep(time.Second)
		if n := len(logs.FilterMessage("restored from boot snapshot").All()); n != 2 {
			t.Errorf("%d restored starts, want 2", n)
		}
		if r := logs.FilterMessage("spare VM ready").All(); len(r) != 0 {
			t.Errorf("spare VMs launched: %v", r)
		}
	})
	t.Run("Close ends the spare", func(t *testing.T) {
		qemu.SetSpareIdle(e.hv, time.Hour)
		s := spec("last")
		m, c := e.start(t, ctx, s)
		use(t, s, m, c, "true", "")
		spare := spareReady(t, 6)
		if err := e.hv.(io.Closer).Close(); err != nil {
			t.Fatal(err)
		}
		if alive(spare) {
			t.Errorf("spare %d still runs after Close", spare)
		}
		if n, err := e.hv.(interface{ SpareMemory() (uint64, error) }).SpareMemory(); err != nil || n != 0 {
			t.Errorf("SpareMemory after Close: %d bytes, %v; want 0", n, err)
		}
		noSpares(t)
	})
}

// pss is a process's proportional set size, from smaps_rollup.
func pss(pid int) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	var f []string
	for _, l := range strings.Split(string(data), "\n") {
		for _, k := range []string{"Rss:", "Pss:", "Pss_Anon:", "Pss_File:", "Pss_Shmem:"} {
			if strings.HasPrefix(l, k) {
				f = append(f, strings.Join(strings.Fields(l), " "))
			}
		}
	}
	return strings.Join(f, ", ")
}

// alive says whether pid runs (not a zombie).
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || len(s) < i+3 || s[i+2] != 'Z'
}
