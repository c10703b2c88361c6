package qemu

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/vm"
)

// Name answers while the KVM probe runs: the probe (up to ProbeTimeout)
// must not hold the lock Name reads the accelerator under. The probe boots
// a qemu that never answers (a shell script standing in for a hung KVM
// guest) on a KVM device that opens (a plain file).
func TestQEMUNameDuringKVMProbe(t *testing.T) {
	dir := t.TempDir()
	started := filepath.Join(dir, "probe-started")
	fake := filepath.Join(dir, "qemu-hangs")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\ntouch "+started+"\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	kvm := filepath.Join(dir, "kvm")
	if err := os.WriteFile(kvm, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	hv, err := New(Options{QEMUX86: fake, QEMUARM: fake, ProbeTimeout: 5 * time.Second, CacheDir: filepath.Join(dir, "cache")})
	if err != nil {
		t.Fatal(err)
	}
	h := hv.(*qemuHypervisor)
	h.kvmDevice = kvm
	spec := vm.MachineSpec{ID: "probe", Arch: vm.HostArch(), CPUs: 1, MemoryMiB: 256,
		Kernel: filepath.Join(dir, "no-kernel"), Initramfs: filepath.Join(dir, "no-initramfs"),
		StateDir: filepath.Join(dir, "state"), Network: vm.Network{Mode: vm.NetworkNone}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res := make(chan error, 1)
	go func() {
		m, err := h.Start(ctx, spec)
		if m != nil {
			m.Stop(context.Background(), true)
		}
		res <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(started); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the probe's qemu never started")
		}
	}
	t0 := time.Now()
	name := make(chan string, 1)
	go func() { name <- h.Name() }()
	select {
	case n := <-name:
		if n != "qemu" {
			t.Errorf("Name during the probe: %q, want qemu (no accelerator decided yet)", n)
		}
		t.Logf("Name answered in %v", time.Since(t0))
	case <-time.After(time.Second):
		t.Errorf("Name still waits after %v: it is held up by the KVM probe", time.Since(t0))
	}
	select {
	case <-res:
		t.Fatal("Start returned while the probe's qemu hangs; the test measured nothing")
	default:
	}
	cancel()
	if err := <-res; err == nil {
		t.Fatal("Start with a hung qemu succeeded")
	}
	noLeftovers(t, spec.StateDir)
}
