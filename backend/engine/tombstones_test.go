package engine

import (
	"fmt"
	"testing"
)

// The last maxTombstones removals keep their codes, by ID and by name; older ones go one at a time;
// a name used again answers for its newest container even when the older one is dropped.
func TestTombstones(t *testing.T) {
	var tb tombstones
	tb.add("id-reused", "reused", 7)
	for i := 0; i < 2*maxTombstones; i++ {
		tb.add(fmt.Sprintf("id-%d", i), fmt.Sprintf("name-%d", i), i%256)
		if i == maxTombstones/2 {
			tb.add("id-reused-2", "reused", 9) // the same name, a newer container
		}
	}
	for i := 0; i < 2*maxTombstones; i++ {
		code, ok := tb.get(fmt.Sprintf("id-%d", i))
		code2, ok2 := tb.get(fmt.Sprintf("name-%d", i))
		kept := i >= maxTombstones
		if ok != kept || ok2 != kept || (kept && (code != i%256 || code2 != i%256)) {
			t.Fatalf("container %d: %d %v / by name %d %v; want kept=%v", i, code, ok, code2, ok2, kept)
		}
	}
	if _, ok := tb.get("id-reused"); ok {
		t.Error("the oldest removal is still kept")
	}
	if len(tb.codes) != 2*maxTombstones || len(tb.order) != maxTombstones {
		t.Errorf("%d codes, %d in order; want %d, %d", len(tb.codes), len(tb.order), 2*maxTombstones, maxTombstones)
	}
}
