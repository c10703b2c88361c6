package qemu

import (
	"context"
	"testing"
	"time"
)

// TestSettleTemplate: a template is saved only once its RAM has stopped
// changing for settleQuiet (and no sooner than settleMin): a RAM written
// to for 3 s is waited for until 1.5 s after the last write; a quiet one
// for settleMin.
func TestSettleTemplate(t *testing.T) {
	ram, err := newMemfd("settle", 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer ram.Close()
	start := time.Now()
	settleTemplate(context.Background(), ram)
	if d := time.Since(start); d < settleMin || d > settleMin+time.Second {
		t.Errorf("a quiet RAM: settled after %s, want %s", d, settleMin)
	}

	lastWrite := make(chan time.Time, 1)
	go func() {
		page := make([]byte, 4096)
		var off int64
		var last time.Time
		for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
			page[0] = 1
			ram.WriteAt(page, off)
			last = time.Now()
			off += 1 << 20
		}
		lastWrite <- last
	}()
	settleTemplate(context.Background(), ram)
	done := time.Now()
	if last := <-lastWrite; done.Sub(last) < settleQuiet || done.Sub(last) > settleQuiet+time.Second {
		t.Errorf("settled %s after the last write, want %s", done.Sub(last), settleQuiet)
	}
}
