package dockerapi

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"

	"github.com/skiff-containers/skiff/backend/engine"
)

// TestStatsResponseHostMemory: memory_stats keeps the guest's usage and
// limit and carries what the VM costs the host in memory_stats.stats.host_memory.
func TestStatsResponseHostMemory(t *testing.T) {
	st := &engine.Stats{MemoryUsage: 5 << 20, MemoryLimit: 512 << 20, HostMemory: 90 << 20}
	r := statsResponse(&engine.Container{ID: "abc", Name: "web"}, st, container.CPUStats{}, container.CPUStats{}, st.Time)
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"usage":5242880`, `"limit":536870912`, `"host_memory":94371840`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("stats response lacks %s: %s", want, b)
		}
	}
}
