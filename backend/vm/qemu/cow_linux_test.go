package qemu_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
)

// guestRAMMapping is the line of /proc/pid/maps that maps the guest RAM
// memfd: "addr perms offset dev inode name".
func guestRAMMapping(t *testing.T, pid string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + pid + "/maps")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "/memfd:skiff-guest-ram") {
			return strings.Fields(l)
		}
	}
	t.Fatalf("qemu %s maps no guest RAM memfd:\n%s", pid, b)
	return nil
}

// TestCopyOnWriteRAM: VMs restored from one boot snapshot with no shares
// map the snapshot's RAM privately over one memfd (what a guest does not
// write is the same host memory in all of them), each writes into its own
// copy without the others seeing it, each reports its part of the shared
// RAM as its host memory, and none takes a share while it runs.
func TestCopyOnWriteRAM(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	image := diskImage(t, ctx, t.TempDir())
	r := startRestored(t, ctx, 3, func(e *env, i int) vm.MachineSpec {
		s := e.spec(t, fmt.Sprint("cow", i))
		s.Boot.Root = agentproto.RootFromDisks
		s.Disks = []vm.Disk{{ID: agentproto.ImageDiskID, Path: image, ReadOnly: true}, {ID: agentproto.UpperDiskID, Path: upperDisk(t, t.TempDir())}}
		return s
	})
	ms, cs, specs := r.Machines, r.Clients, r.Specs
	var pids []string
	for _, s := range specs {
		pids = append(pids, qemuPid(t, s.StateDir))
	}
	var ino string
	for i, pid := range pids {
		f := guestRAMMapping(t, pid)
		if f[1] != "rw-p" {
			t.Errorf("VM %d maps its RAM %s, want rw-p (private: copy-on-write)", i, f[1])
		}
		if i > 0 && f[4] != ino {
			t.Errorf("VM %d maps RAM memfd inode %s, VM 0 inode %s: not one memfd", i, f[4], ino)
		}
		ino = f[4]
	}

	// Each writes its own 32 MiB (into its page cache) and reads them back.
	sums := make([]string, len(cs))
	for i, c := range cs {
		script := fmt.Sprintf("yes vm%d | head -c 33554432 > /x && md5sum < /x", i)
		p, err := c.Run(ctx, agentproto.ProcessSpec{Args: []string{"sh", "-c", script}})
		if err != nil {
			t.Fatal(err)
		}
		out, errOut, code := output(t, p)
		p.Close()
		if code != 0 {
			t.Fatalf("VM %d: exit %d: %s%s", i, code, out, errOut)
		}
		sums[i] = out
	}
	for i, c := range cs {
		p, err := c.Run(ctx, agentproto.ProcessSpec{Args: []string{"sh", "-c", "md5sum < /x"}})
		if err != nil {
			t.Fatal(err)
		}
		out, errOut, code := output(t, p)
		p.Close()
		if code != 0 || out != sums[i] || (i > 0 && out == sums[0]) {
			t.Errorf("VM %d reads back %q (exit %d, %s), wrote %q", i, out, code, errOut, sums[i])
		}
	}

	// Host memory: qemu's own pages and a third of the shared RAM.
	saved := r.savedRAM(t)
	got, err := ms[1].(vm.HostMemoryReporter).HostMemory()
	if err != nil {
		t.Fatal(err)
	}
	u := readMemUse(t, pids[1])
	own := uint64(u.pssAnon+u.pssFile) << 10
	t.Logf("host memory %d KiB: saved RAM %d KiB (a third: %d), qemu %+v KiB", got>>10, saved>>10, saved/3>>10, u)
	if got+8<<20 < own+saved/3 || got > own+saved/3+8<<20 {
		t.Errorf("host memory %d KiB, want qemu's own pages (%d KiB) and a third of the saved RAM (%d KiB)", got>>10, own>>10, saved/3>>10)
	}

	// Free page reporting is off (the balloon driver unloaded, or unbound
	// where it is built in): QEMU could not discard a copy-on-write VM's
	// pages and would log each refusal. Only what follows counts: a guest
	// slowed down enough may report pages between its restore and the unbind.
	logged := make([]int, len(specs))
	for i, s := range specs {
		b, _ := os.ReadFile(filepath.Join(s.StateDir, "qemu.log"))
		logged[i] = len(b)
	}
	for i, c := range cs {
		p, err := c.Run(ctx, agentproto.ProcessSpec{Args: []string{"sh", "-c", "rm /x && sync && echo 3 > /proc/sys/vm/drop_caches && echo bound: && { ls /sys/bus/virtio/drivers/virtio_balloon 2>/dev/null || true; }"}})
		if err != nil {
			t.Fatal(err)
		}
		out, errOut, code := output(t, p)
		p.Close()
		if _, bound, _ := strings.Cut(out, "bound:"); code != 0 || strings.Contains(bound, "virtio") {
			t.Errorf("VM %d: exit %d (%s), the balloon driver still bound:\n%s", i, code, errOut, out)
		}
	}
	time.Sleep(5 * time.Second) // the guest reports what it freed after 2 s
	for i, s := range specs {
		if b, _ := os.ReadFile(filepath.Join(s.StateDir, "qemu.log")); strings.Contains(string(b[logged[i]:]), "discard") {
			t.Errorf("VM %d: qemu.log after the balloon was unbound:\n%s", i, b[logged[i]:])
		}
	}

	sa, ok := ms[1].(vm.ShareAdder)
	if !ok {
		t.Fatal("a restored machine is no ShareAdder")
	}
	if n := sa.FreeShareSlots(); n != 0 {
		t.Errorf("free share slots of a copy-on-write VM: %d, want 0", n)
	}
	if err := sa.AddShare(ctx, vm.Share{Tag: "more", HostPath: t.TempDir()}); !errors.Is(err, vm.ErrNotSupported) {
		t.Errorf("AddShare to a copy-on-write VM: %v, want ErrNotSupported", err)
	}
}
