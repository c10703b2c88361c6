package qemu

import (
	"strconv"
	"time"

	"github.com/skiff-containers/skiff/backend/vm"
)

// guestHZ is the timer frequency (CONFIG_HZ) of the kernels Skiff boots:
// its own (kernel/) and Debian's cloud kernel both run at 250 Hz.
const guestHZ = 250

// delayArgs are the kernel arguments that spare an amd64 guest under TCG the
// calibrations of its clocks against the timer, which take real time:
//   - lpj= presets loops_per_jiffy on every CPU. TCG's CPU model has no
//     constant TSC, so the kernel cannot reuse the boot CPU's value and times
//     each further vCPU's loop against the timer tick (~0.4 s of a 2-vCPU
//     boot, and it fails under load: "calibrate_delay_direct() failed"). With
//     the TSC as delay source (tsc=reliable, fastBoot) a loop is a TSC cycle,
//     and a TCG guest's TSC is the host's counter, so the value is the host's
//     TSC rate per tick.
//   - tsc_early_khz= gives the kernel that rate, so that when its quick PIT
//     calibration fails (as it often does under TCG: "Fast TSC calibration
//     failed") it does not measure the TSC against the PIT and the HPET again
//     (tens of ms). The kernel still refines the rate against the HPET a
//     second after boot, as it always does.
//
// Nil under KVM (a real CPU calibrates in no time), for other guests, and
// where the rate is unknown (hostTSCkHz).
func (h *qemuHypervisor) delayArgs(spec vm.MachineSpec, accel string) []string {
	if spec.Arch != "amd64" || accel != "tcg" {
		return nil
	}
	h.tscOnce.Do(func() { h.tscKHz = hostTSCkHz(10 * time.Millisecond) })
	if h.tscKHz <= 0 {
		return nil
	}
	return []string{"lpj=" + strconv.FormatInt(h.tscKHz*1000/guestHZ, 10), "tsc_early_khz=" + strconv.FormatInt(h.tscKHz, 10)}
}
