package qemu

import "time"

// rdtsc reads the time-stamp counter of the CPU it runs on.
func rdtsc() uint64

// hostTSCkHz measures the host's time-stamp counter rate in kHz against the
// monotonic clock over about window: the rate a TCG guest's TSC runs at, for
// QEMU hands a TCG guest the host's counter (cpu_get_host_ticks). Each end
// is the counter read between two clock reads, taken again when the two were
// more than 20 µs apart (the thread was preempted in between).
func hostTSCkHz(window time.Duration) int64 {
	sample := func() (time.Time, uint64) {
		for i := 0; ; i++ {
			t0 := time.Now()
			c := rdtsc()
			t1 := time.Now()
			if d := t1.Sub(t0); d < 20*time.Microsecond || i == 100 {
				return t0.Add(d / 2), c
			}
		}
	}
	t0, c0 := sample()
	time.Sleep(window)
	t1, c1 := sample()
	us := t1.Sub(t0).Microseconds()
	if us <= 0 || c1 <= c0 {
		return 0
	}
	return int64((c1 - c0) * 1000 / uint64(us))
}
