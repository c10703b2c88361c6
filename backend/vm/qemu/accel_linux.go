package qemu

import "strconv"

// tcgCodeMiB is the size of TCG's buffer of translated code. QEMU's own
// default, 1 GiB, is reserved, not used, but a guest's code is translated
// again and again (after each write to a page that held code) and fills
// it over time; each page it touched stays resident, in transparent huge
// pages (QEMU asks for them): ~45 MB in an idle VM restored half a minute
// before. At 32 MiB (QEMU's default before 5.0) the buffer is flushed and
// reused once full. KVM translates nothing.
const tcgCodeMiB = 32

// accelArg is qemu's -accel value for accel.
func accelArg(accel string) string {
	if accel == "tcg" {
		return "tcg,tb-size=" + strconv.Itoa(tcgCodeMiB)
	}
	return accel
}
