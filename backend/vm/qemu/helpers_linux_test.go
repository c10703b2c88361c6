package qemu

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/skiff-containers/skiff/backend/vm"
)

// testBundle returns the bundle `make kernel` built for arch, or skips.
func testBundle(t testing.TB, arch string) *vm.Bundle {
	t.Helper()
	dir := os.Getenv(vm.EnvKernelDir)
	if dir == "" {
		dir = "../../_build/kernel"
	}
	b, err := vm.LoadBundle(filepath.Join(dir, arch))
	if err != nil {
		t.Skipf("no %s kernel bundle (run `make kernel`, which `make setup` does): %v", arch, err)
	}
	return b
}

var testinitBuild struct {
	sync.Mutex
	bins map[string][]byte
}

// testInit builds internal/testinit for arch (once per test binary).
func testInit(t testing.TB, arch string) []byte {
	t.Helper()
	testinitBuild.Lock()
	defer testinitBuild.Unlock()
	if b := testinitBuild.bins[arch]; b != nil {
		return b
	}
	out := filepath.Join(t.TempDir(), "init")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./internal/testinit")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building testinit: %v\n%s", err, o)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if testinitBuild.bins == nil {
		testinitBuild.bins = map[string][]byte{}
	}
	testinitBuild.bins[arch] = data
	return data
}

func testQEMU(t testing.TB) *qemuHypervisor {
	t.Helper()
	var log *zap.Logger = zap.NewNop()
	if os.Getenv("SKIFF_TEST_LOG") != "" {
		log = zaptest.NewLogger(t)
	}
	h, err := New(Options{Log: log, Accel: os.Getenv("SKIFF_QEMU_ACCEL")})
	if err != nil {
		t.Skipf("qemu not installed (run `make setup`): %v", err)
	}
	t.Cleanup(func() { h.(*qemuHypervisor).Close() })
	return h.(*qemuHypervisor)
}

// testinitSpec is a machine booting testinit for arch.
func testinitSpec(t testing.TB, arch string) vm.MachineSpec {
	t.Helper()
	b := testBundle(t, arch)
	dir := t.TempDir()
	initrd, err := vm.BuildInitramfsWithInit(context.Background(), b, testInit(t, arch), filepath.Join(dir, "cache"))
	if err != nil {
		t.Fatal(err)
	}
	return vm.MachineSpec{ID: "t-" + arch, Arch: arch, CPUs: 1, MemoryMiB: 256, Kernel: b.KernelPath(),
		Initramfs: initrd, StateDir: filepath.Join(dir, "state"), ConsoleLog: filepath.Join(dir, "console.log"),
		Network: vm.Network{Mode: vm.NetworkNone}}
}

// call sends one testinit command on a new stream and returns the reply line.
func call(ctx context.Context, m vm.Machine, cmd string) (string, error) {
	c, err := m.Dial(ctx)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := fmt.Fprintln(c, cmd); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// noLeftovers checks that no process still runs from the state dir's
// machine: no qemu or virtiofsd child of ours, no pid files or sockets.
func noLeftovers(t testing.TB, stateDir string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		kids := childProcs(os.Getpid())
		var left []string
		for _, k := range kids {
			if strings.Contains(k, " skiff-spare-") { // a spare VM (spare_linux.go), ended by Close
				continue
			}
			if strings.Contains(k, "qemu-system") || strings.Contains(k, "virtiofsd") {
				left = append(left, k)
			}
		}
		files, _ := filepath.Glob(filepath.Join(stateDir, "*.pid"))
		socks, _ := filepath.Glob(filepath.Join(stateDir, "*.sock"))
		if len(left)+len(files)+len(socks) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("leftovers: processes %q, pid files %q, sockets %q", left, files, socks)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// childProcs lists "pid cmdline" of the processes whose parent is ppid
// (zombies included: an unreaped child is a leak too).
func childProcs(ppid int) []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 || f[1] != fmt.Sprint(ppid) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		out = append(out, e.Name()+" "+strings.ReplaceAll(string(cmdline), "\x00", " ")+" "+s[:i+1])
	}
	return out
}

// validSpec is a spec Validate accepts (what qemuArgs is given in the argument tests).
func validSpec() vm.MachineSpec {
	return vm.MachineSpec{ID: "x", Arch: "amd64", CPUs: 1, MemoryMiB: 256, Kernel: "k", Initramfs: "i", StateDir: "/tmp/s",
		Shares: []vm.Share{{Tag: "rootfs", HostPath: "/r"}}}
}
