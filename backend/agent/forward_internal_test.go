//go:build linux

package agent

import (
	"testing"

	"github.com/skiff-containers/skiff/backend/agentproto"
)

func TestGrowForwardBuf(t *testing.T) {
	size := func(b []byte) int { return len(b) - agentproto.HeaderSize }
	buf := make([]byte, agentproto.HeaderSize+forwardBufMin)
	if got := size(growForwardBuf(buf, forwardBufMin-1)); got != forwardBufMin {
		t.Errorf("a partial read grew the buffer to %d", got)
	}
	var steps []int
	for size(buf) < agentproto.MaxFrameSize {
		buf = growForwardBuf(buf, size(buf))
		steps = append(steps, size(buf))
		if len(steps) > 10 {
			t.Fatalf("no whole frame after %v", steps)
		}
	}
	if size(buf) != agentproto.MaxFrameSize {
		t.Errorf("grew past a frame: %v", steps)
	}
	if got := size(growForwardBuf(buf, size(buf))); got != agentproto.MaxFrameSize {
		t.Errorf("a full read of a whole frame grew the buffer to %d", got)
	}
}
