package vm

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// guestCmdline is the kernel command line a backend boots: its own base
// arguments (console, agent channel, tuning), the network key (skiff.net=none
// without a network, else net when not empty), spec.Cmdline, then the
// clock (skiff.time) and 32 bytes of host entropy (skiff.seed, so the guest's
// random pool is ready without waiting for its virtio-rng driver) unless the
// caller gave them. A key the caller gave wins.
func guestCmdline(base []string, spec MachineSpec, net string, now time.Time) string {
	given := func(key string) bool {
		for _, c := range spec.Cmdline {
			if strings.HasPrefix(c, key+"=") {
				return true
			}
		}
		return false
	}
	args := append([]string(nil), base...)
	switch {
	case given("skiff.net"):
	case spec.Network.Mode == NetworkNone:
		args = append(args, "skiff.net=none")
	case net != "":
		args = append(args, "skiff.net="+net)
	}
	args = append(args, spec.Cmdline...)
	if !given("skiff.time") {
		args = append(args, "skiff.time="+strconv.FormatInt(now.UnixNano(), 10))
	}
	if !given("skiff.seed") {
		seed := make([]byte, 32)
		if _, err := rand.Read(seed); err == nil {
			args = append(args, "skiff.seed="+hex.EncodeToString(seed))
		}
	}
	return strings.Join(args, " ")
}
