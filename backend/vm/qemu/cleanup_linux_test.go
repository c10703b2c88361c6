package qemu

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/backend/vm/internal/proc"
)

func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || len(s) < i+3 || s[i+2] != 'Z'
}

// TestHostDeathKillsChildren runs a VM from a child test process, kills that
// process with SIGKILL, and checks qemu and virtiofsd die with it. The child
// never runs its cleanups: its temporary directories are made inside this
// test's (TMPDIR), which this test's cleanup removes.
func TestHostDeathKillsChildren(t *testing.T) {
	if os.Getenv("SKIFF_VM_HELPER") == "hang" {
		h := testQEMU(t)
		spec := testinitSpec(t, "amd64")
		spec.Shares = []vm.Share{{Tag: "rootfs", HostPath: t.TempDir()}}
		m, err := h.Start(context.Background(), spec)
		if err != nil {
			t.Fatal(err)
		}
		qm := m.(*qemuMachine)
		fmt.Printf("PIDS %d %d %s %s\n", qm.cmd.Process.Pid, qm.fsds[0].cmd.Process.Pid, spec.StateDir, spec.Shares[0].HostPath)
		select {}
	}
	testQEMU(t)
	testBundle(t, "amd64")
	tmp := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHostDeathKillsChildren$", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), "SKIFF_VM_HELPER=hang", "TMPDIR="+tmp)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var pids []int
	var dirs []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 5 && f[0] == "PIDS" {
			for _, s := range f[1:3] {
				p, _ := strconv.Atoi(s)
				pids = append(pids, p)
			}
			dirs = f[3:]
			break
		}
	}
	if len(pids) != 2 {
		t.Fatal("helper printed no pids")
	}
	for _, d := range dirs {
		if !strings.HasPrefix(d, tmp+"/") {
			t.Errorf("the killed helper's directory %s is outside this test's %s: nothing removes it", d, tmp)
		}
	}
	for _, p := range pids {
		if !alive(p) {
			t.Fatalf("pid %d not running before the kill", p)
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for _, p := range pids {
		for alive(p) {
			if time.Now().After(deadline) {
				syscall.Kill(p, syscall.SIGKILL)
				t.Fatalf("pid %d survived its host process", p)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestStaleStateDir: a start kills what an earlier run recorded in the state
// dir (when it still is that process) and removes stale sockets.
func TestStaleStateDir(t *testing.T) {
	h := testQEMU(t)
	dir := t.TempDir()
	sleep := exec.Command("sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	defer sleep.Process.Kill()
	exited := make(chan struct{})
	go func() { sleep.Wait(); close(exited) }()
	if err := proc.WritePidFile(dir, "qemu", sleep.Process.Pid); err != nil {
		t.Fatal(err)
	}
	// A pid file naming a live process with another start time is not ours.
	os.WriteFile(filepath.Join(dir, "virtiofsd-x.pid"), []byte(fmt.Sprintf("%d 1\n", os.Getpid())), 0o644)
	os.WriteFile(filepath.Join(dir, "old.sock"), nil, 0o644)
	spec := vm.MachineSpec{ID: "stale", Arch: "amd64", Kernel: "/nonexistent/vmlinuz", Initramfs: "/nonexistent/initrd",
		StateDir: dir, Network: vm.Network{Mode: vm.NetworkNone}}
	_, err := h.Start(context.Background(), spec)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/vmlinuz") {
		t.Fatalf("start with a missing kernel: %v; want an error naming it", err)
	}
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatal("the stale process survived")
	}
	noLeftovers(t, dir)
}
