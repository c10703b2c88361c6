package vm

import (
	"crypto/rand"
	"strings"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
)

// GuestBoot is the agent's boot configuration a backend passes: spec.Boot,
// with the network (none without one, else net) unless the caller gave it,
// and the clock (now) and 32 bytes of host entropy (so the guest's random
// pool is ready without waiting for its virtio-rng driver) unless the
// caller gave them. The backend then sets its channel.
func GuestBoot(spec MachineSpec, net agentproto.NetConfig, now time.Time) agentproto.Boot {
	b := spec.Boot
	switch {
	case b.Net.Mode != "":
	case spec.Network.Mode == NetworkNone:
		b.Net = agentproto.NetConfig{Mode: agentproto.NetNone}
	default:
		b.Net = net
	}
	if b.Time.IsZero() {
		b.Time = now
	}
	if b.Seed == nil {
		seed := make([]byte, 32)
		if _, err := rand.Read(seed); err == nil {
			b.Seed = seed
		}
	}
	return b
}

// leanDevices size what the guest's kernel allocates for its devices, the
// same on every backend (the agent passes a module's keys to it when it
// loads it): each virtio disk gets one request queue of 64 requests instead
// of one per vCPU of the device's queue size (256 under QEMU). A restored
// VM's disks are hot-plugged after the restore, so their request arrays are
// pages each VM writes for itself: 0.4–0.5 MB per VM with its two disks
// (docs/performance.md).
var leanDevices = []string{"virtio_blk.num_request_queues=1", "virtio_blk.queue_depth=64"}

// GuestCmdline is the kernel command line a backend boots: its own base
// arguments (console, tuning), leanDevices, spec.Cmdline (which may override
// them), then boot's skiff.* keys.
func GuestCmdline(base []string, spec MachineSpec, boot agentproto.Boot) string {
	args := append(append(append(append([]string(nil), base...), leanDevices...), spec.Cmdline...), boot.Args()...)
	return strings.Join(args, " ")
}
