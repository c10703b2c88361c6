package shmring

import (
	"io"
	"testing"
	"time"
)

// TestPingPongNeverStalls: small requests and answers, one at a time, as the agent channel's
// requests go: each side sleeps in Read between messages, where a lost wake-up would stall the
// stream for good.
func TestPingPongNeverStalls(t *testing.T) {
	guest, host, _, _ := pair(t, MinSize)
	const rounds = 20000
	done := make(chan error, 2)
	go func() { // the guest answers each request
		buf := make([]byte, 64)
		for i := 0; i < rounds; i++ {
			if _, err := io.ReadFull(guest, buf[:16]); err != nil {
				done <- err
				return
			}
			if _, err := guest.Write(buf[:16]); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	go func() {
		buf := make([]byte, 16)
		for i := 0; i < rounds; i++ {
			if _, err := host.Write(buf); err != nil {
				done <- err
				return
			}
			if _, err := io.ReadFull(host, buf); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	deadline := time.After(60 * time.Second)
	for i := 0; i < 2; i++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-deadline:
			t.Fatalf("stalled: guest %+v, host %+v", guest.Stats(), host.Stats())
		}
	}
}
