//go:build linux && !amd64

package qemu

import "time"

// hostTSCkHz is 0 off amd64: an amd64 guest under TCG on another host arch
// gets the host's own counter (arm64's generic timer) as its TSC, whose rate
// the kernel's calibration finds as before.
func hostTSCkHz(time.Duration) int64 { return 0 }
