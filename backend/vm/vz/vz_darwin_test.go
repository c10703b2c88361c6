//go:build darwin

package vz

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/Code-Hex/vz/v3"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
)

// These run on a Mac (`go test ./backend/vm/vz`); on Linux `make darwincheck`
// type-checks them.

func TestVzCmdline(t *testing.T) {
	now := time.Unix(1700000000, 5)
	got := vzCmdline(vm.MachineSpec{Cmdline: []string{"loglevel=3"}, Boot: agentproto.Boot{Hostname: "web",
		Net: agentproto.NetConfig{Mode: agentproto.NetDHCP}, Seed: []byte{0}}}, now)
	want := "console=hvc0 quiet panic=-1 loglevel=3 skiff.channel=vsock:1024 skiff.net=dhcp skiff.hostname=web skiff.time=1700000000000000005 skiff.seed=00"
	if got != want {
		t.Fatalf("vzCmdline =\n%s\nwant\n%s", got, want)
	}
	// The engine's user-space network, as under QEMU: the guest's address is fixed.
	if got = vzCmdline(vm.MachineSpec{}, now); !strings.Contains(got, " skiff.net=static:10.0.2.15/24,10.0.2.2,10.0.2.3 ") {
		t.Fatalf("the user-space network's static configuration: %s", got)
	}
	got = vzCmdline(vm.MachineSpec{Network: vm.Network{Mode: vm.NetworkNone}}, now)
	if !strings.Contains(got, " skiff.net=none ") {
		t.Fatalf("no network must say skiff.net=none: %s", got)
	}
	got = vzCmdline(vm.MachineSpec{Boot: agentproto.Boot{Time: time.Unix(0, 42)}}, now)
	if strings.Count(got, "skiff.time=") != 1 || !strings.Contains(got, " skiff.time=42 ") {
		t.Fatalf("a caller's skiff.time must win: %s", got)
	}
}

func TestClamp(t *testing.T) {
	tests := []struct{ v, lo, hi, want uint }{
		{4, 1, 8, 4},
		{0, 1, 8, 1},
		{64, 1, 8, 8},
		{64, 1, 0, 64}, // no upper bound
	}
	for _, tt := range tests {
		if got := clamp(tt.v, tt.lo, tt.hi); got != tt.want {
			t.Errorf("clamp(%d, %d, %d) = %d, want %d", tt.v, tt.lo, tt.hi, got, tt.want)
		}
	}
	if got := clamp(uint64(100)<<20, vz.VirtualMachineConfigurationMinimumAllowedMemorySize(), vz.VirtualMachineConfigurationMaximumAllowedMemorySize()); got < vz.VirtualMachineConfigurationMinimumAllowedMemorySize() {
		t.Errorf("memory below the framework's minimum: %d", got)
	}
}

func TestStateFromVz(t *testing.T) {
	tests := map[vz.VirtualMachineState]vm.State{
		vz.VirtualMachineStateStopped:   vm.StateStopped,
		vz.VirtualMachineStateRunning:   vm.StateRunning,
		vz.VirtualMachineStatePaused:    vm.StatePaused,
		vz.VirtualMachineStateError:     vm.StateFailed,
		vz.VirtualMachineStateStarting:  vm.StateStarting,
		vz.VirtualMachineStatePausing:   vm.StateRunning,
		vz.VirtualMachineStateResuming:  vm.StatePaused,
		vz.VirtualMachineStateStopping:  vm.StateStopping,
		vz.VirtualMachineStateSaving:    vm.StatePaused,
		vz.VirtualMachineStateRestoring: vm.StateStarting,
	}
	for in, want := range tests {
		if got := stateFromVz(in); got != want {
			t.Errorf("stateFromVz(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestEntitlementHint(t *testing.T) {
	if h := entitlementHint(errors.New(`The process doesn’t have the “com.apple.security.virtualization” entitlement.`)); !strings.Contains(h, "entitlements.plist") {
		t.Errorf("no hint for a missing entitlement: %q", h)
	}
	if h := entitlementHint(errors.New("other")); h != "" {
		t.Errorf("hint for an unrelated error: %q", h)
	}
}

func TestVZRejectsForeignArch(t *testing.T) {
	hv, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	other := "amd64"
	if vm.HostArch() == "amd64" {
		other = "arm64"
	}
	_, err = hv.Start(t.Context(), vm.MachineSpec{ID: "x", Arch: other, Kernel: "k", Initramfs: "i", StateDir: t.TempDir()})
	if !errors.Is(err, vm.ErrNotSupported) {
		t.Fatalf("Start of a %s guest: err = %v, want ErrNotSupported", other, err)
	}
}
