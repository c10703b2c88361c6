package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/skiff-containers/skiff/app"
)

// TestPrintStatsHostMemory: `skiff stats` shows the VM's host-side memory
// after the existing columns, "-" when the hypervisor cannot tell.
func TestPrintStatsHostMemory(t *testing.T) {
	var out bytes.Buffer
	printStats(&out, []string{"a1", "b2"}, map[string]string{"a1": "web", "b2": "db"}, map[string]*app.Stats{
		"a1": {MemoryUsage: 5e6, MemoryLimit: 512e6, HostMemory: 90e6},
		"b2": {MemoryUsage: 1e6, MemoryLimit: 512e6},
	})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[0], "PIDS   HOST MEM") {
		t.Fatalf("stats output:\n%s", out.String())
	}
	if !strings.HasSuffix(lines[1], "90.0 MB") || !strings.Contains(lines[1], "5.0 MB / 512.0 MB") {
		t.Errorf("web's line: %q", lines[1])
	}
	if !strings.HasSuffix(lines[2], " -") {
		t.Errorf("db's line (no host figure): %q", lines[2])
	}
}
