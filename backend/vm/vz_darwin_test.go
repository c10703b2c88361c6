//go:build darwin

package vm

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/Code-Hex/vz/v3"

	"github.com/skiff-containers/skiff/backend/agentproto"
)

// These run on a Mac (`go test ./backend/vm`); on Linux `make darwincheck`
// type-checks them.

func TestVzCmdline(t *testing.T) {
	now := time.Unix(1700000000, 5)
	got := vzCmdline(MachineSpec{Cmdline: []string{"loglevel=3"}, Boot: agentproto.Boot{Hostname: "web",
		Net: agentproto.NetConfig{Mode: agentproto.NetDHCP}, Seed: []byte{0}}}, now)
	want := "console=hvc0 quiet panic=-1 loglevel=3 skiff.channel=vsock:1024 skiff.net=dhcp skiff.hostname=web skiff.time=1700000000000000005 skiff.seed=00"
	if got != want {
		t.Fatalf("vzCmdline =\n%s\nwant\n%s", got, want)
	}
	// The engine's user-space network, as under QEMU: the guest's address is fixed.
	if got = vzCmdline(MachineSpec{}, now); !strings.Contains(got, " skiff.net=static:10.0.2.15/24,10.0.2.2,10.0.2.3 ") {
		t.Fatalf("the user-space network's static configuration: %s", got)
	}
	got = vzCmdline(MachineSpec{Network: Network{Mode: NetworkNone}}, now)
	if !strings.Contains(got, " skiff.net=none ") {
		t.Fatalf("no network must say skiff.net=none: %s", got)
	}
	got = vzCmdline(MachineSpec{Boot: agentproto.Boot{Time: time.Unix(0, 42)}}, now)
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
	tests := map[vz.VirtualMachineState]State{
		vz.VirtualMachineStateStopped:   StateStopped,
		vz.VirtualMachineStateRunning:   StateRunning,
		vz.VirtualMachineStatePaused:    StatePaused,
		vz.VirtualMachineStateError:     StateFailed,
		vz.VirtualMachineStateStarting:  StateStarting,
		vz.VirtualMachineStatePausing:   StateRunning,
		vz.VirtualMachineStateResuming:  StatePaused,
		vz.VirtualMachineStateStopping:  StateStopping,
		vz.VirtualMachineStateSaving:    StatePaused,
		vz.VirtualMachineStateRestoring: StateStarting,
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
	hv, err := NewHypervisor(nil)
	if err != nil {
		t.Fatal(err)
	}
	other := "amd64"
	if HostArch() == "amd64" {
		other = "arm64"
	}
	_, err = hv.Start(t.Context(), MachineSpec{ID: "x", Arch: other, Kernel: "k", Initramfs: "i", StateDir: t.TempDir()})
	if !errors.Is(err, ErrNotSupported) {
		t.Fatalf("Start of a %s guest: err = %v, want ErrNotSupported", other, err)
	}
}
