//go:build darwin

package vz

import (
	"errors"
	"strings"
	"testing"

	"github.com/Code-Hex/vz/v3"

	"github.com/skiff-containers/skiff/backend/vm"
)

// These run on a Mac (`go test ./backend/vm/vz`); on Linux `make darwincheck`
// type-checks them.

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
