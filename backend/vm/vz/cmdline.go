package vz

import (
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
)

// vzBaseArgs are the kernel arguments every vz guest boots with.
var vzBaseArgs = []string{"console=hvc0", "quiet", "panic=-1"}

// vzCmdline is the kernel command line under vz: the hvc0 console, the
// vsock agent channel and the user-space network's fixed configuration (as
// under QEMU). See vm.GuestCmdline.
func vzCmdline(spec vm.MachineSpec, now time.Time) string {
	b := vm.GuestBoot(spec, vm.GuestNet(), now)
	b.Channel = agentproto.Channel{Kind: agentproto.ChannelVsock, VsockPort: vm.DefaultVsockPort}
	return vm.GuestCmdline(vzBaseArgs, spec, b)
}
