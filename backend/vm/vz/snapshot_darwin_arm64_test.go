//go:build darwin && arm64

package vz

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/backend/vm/agentbin"
	"github.com/skiff-containers/skiff/backend/vm/snapcache"
)

// TestVZBootSnapshot runs on a Mac with macOS 14 or later on Apple silicon,
// a signed test binary (`go test -c`, then codesign with
// build/darwin/entitlements.plist) and a kernel bundle (SKIFF_KERNEL_DIR).
// The first start of a configuration boots cold and makes no snapshot; the
// second builds one and is restored from it, with its own hostname; the
// third is restored from it without a build; a snapshot that does not
// restore is dropped and the VM boots cold; a build interrupted leaves
// nothing.
func TestVZBootSnapshot(t *testing.T) {
	if _, err := agentbin.Agent("arm64"); err != nil {
		t.Skipf("%v (`make agent`)", err)
	}
	if os.Getenv(vm.EnvKernelDir) == "" && os.Getenv(vm.EnvKernel) == "" {
		t.Setenv(vm.EnvKernelDir, "../../../_build/kernel")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b, err := vm.ResolveKernel(ctx, vm.KernelOptions{Arch: "arm64"})
	if err != nil {
		t.Skipf("no kernel bundle: %v", err)
	}
	initrd, err := vm.BuildInitramfs(ctx, b, filepath.Join(t.TempDir(), "initramfs"))
	if err != nil {
		t.Fatal(err)
	}
	log := zap.NewNop()
	if os.Getenv("SKIFF_TEST_LOG") != "" {
		log = zaptest.NewLogger(t)
	}
	hv, err := New(log)
	if err != nil {
		t.Fatal(err)
	}
	h := hv.(*vzHypervisor)
	if h.snap.unsupported != nil {
		t.Skipf("no snapshots on this Mac: %v", h.snap.unsupported)
	}
	cache := t.TempDir()
	h.snap.snaps = snapcache.New(cache, snapshotVersion, log)
	root := t.TempDir() // the guest's root share: the agent needs no program for Hello
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	spec := func(name string, mib int) vm.MachineSpec {
		dir := t.TempDir()
		return vm.MachineSpec{ID: "c", Arch: "arm64", CPUs: 1, MemoryMiB: mib, Kernel: b.KernelPath(), Initramfs: initrd,
			Shares: []vm.Share{{Tag: vm.RootShareTag, HostPath: root}}, SkiffAgent: true,
			StateDir: filepath.Join(dir, "state"), ConsoleLog: filepath.Join(dir, "console.log"),
			Boot: agentproto.Boot{Hostname: name}}
	}
	// start starts s, checks the agent's hostname and stops it; it returns
	// whether the VM was restored and how long the start took.
	start := func(t *testing.T, s vm.MachineSpec) (bool, time.Duration) {
		t.Helper()
		began := time.Now()
		m, err := hv.Start(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Stop(context.Background(), true)
		info, err := agentproto.NewClient(m.Dial).Hello(ctx)
		took := time.Since(began)
		console, _ := os.ReadFile(s.ConsoleLog)
		if err != nil {
			t.Fatalf("%s: %v; console:\n%s", s.Boot.Hostname, err, console)
		}
		if info.Hostname != s.Boot.Hostname {
			t.Errorf("hostname %q, want %q", info.Hostname, s.Boot.Hostname)
		}
		restored := strings.Contains(string(console), "restored from boot snapshot")
		t.Logf("%s: restored %v in %s", s.Boot.Hostname, restored, took)
		return restored, took
	}
	metas := func() []string {
		m, _ := filepath.Glob(filepath.Join(cache, "*", "meta.json"))
		return m
	}

	if restored, _ := start(t, spec("first", 512)); restored || len(metas()) != 0 {
		t.Fatalf("the first start of a configuration: restored %v, snapshots %q", restored, metas())
	}
	if restored, _ := start(t, spec("second", 512)); !restored || len(metas()) != 1 {
		t.Fatalf("the second start: restored %v, snapshots %q", restored, metas())
	}
	for _, f := range []string{stateFile, machineIDFile, "console.log"} {
		if _, err := os.Stat(filepath.Join(filepath.Dir(metas()[0]), f)); err != nil {
			t.Error(err)
		}
	}
	if restored, _ := start(t, spec("third", 512)); !restored {
		t.Fatal("the third start was not restored")
	}

	// A snapshot that does not restore is dropped; the VM boots cold.
	if err := os.WriteFile(filepath.Join(filepath.Dir(metas()[0]), stateFile), []byte("not a saved VM"), 0o600); err != nil {
		t.Fatal(err)
	}
	if restored, _ := start(t, spec("cold", 512)); restored {
		t.Error("restored from a broken snapshot")
	}
	if len(metas()) != 0 {
		t.Errorf("the broken snapshot stayed: %q", metas())
	}

	// Another configuration, started once, then again with too little time
	// to build its snapshot: the start fails and leaves nothing.
	start(t, spec("other", 768))
	sctx, scancel := context.WithTimeout(ctx, 400*time.Millisecond)
	defer scancel()
	if m, err := hv.Start(sctx, spec("interrupted", 768)); err == nil {
		m.Stop(ctx, true)
		t.Fatal("a start with 0.4 s to build a snapshot succeeded")
	}
	left, _ := filepath.Glob(filepath.Join(cache, "*", "*"))
	if len(left) != 0 {
		t.Errorf("an interrupted build left %q", left)
	}
}
