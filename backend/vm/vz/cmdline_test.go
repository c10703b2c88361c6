package vz

import (
	"strings"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
)

func TestVzCmdline(t *testing.T) {
	now := time.Unix(1700000000, 5)
	got := vzCmdline(vm.MachineSpec{Cmdline: []string{"loglevel=3"}, Boot: agentproto.Boot{Hostname: "web",
		Net: agentproto.NetConfig{Mode: agentproto.NetDHCP}, Seed: []byte{0}}}, now)
	want := "console=hvc0 quiet panic=-1 virtio_blk.num_request_queues=1 virtio_blk.queue_depth=64 loglevel=3 skiff.channel=vsock:1024 skiff.net=dhcp skiff.hostname=web skiff.time=1700000000000000005 skiff.seed=00"
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
