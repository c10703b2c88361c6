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

// GuestCmdline is the kernel command line a backend boots: its own base
// arguments (console, tuning), spec.Cmdline, then boot's skiff.* keys.
func GuestCmdline(base []string, spec MachineSpec, boot agentproto.Boot) string {
	args := append(append(append([]string(nil), base...), spec.Cmdline...), boot.Args()...)
	return strings.Join(args, " ")
}
