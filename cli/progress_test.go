package cli

import (
	"strings"
	"testing"

	"github.com/skiff-containers/skiff/app"
	"github.com/skiff-containers/skiff/backend/images"
)

// The image disk phase of a pull is shown, and counted done when the disk is ready.
func TestSummarizeShowsDiskPhase(t *testing.T) {
	got := summarize(map[string]app.Progress{
		"pull/l1":      {Phase: "pull", Layer: "l1", Done: 10, Total: 10, Status: "done"},
		"disk/sha:img": {Phase: "disk", Layer: "sha:img", Done: 500, Total: 2000, Status: images.StatusBuildingDisk},
	})
	if !strings.Contains(got, "Building disk: 0/1 (500 B / 2.0 kB)") || !strings.Contains(got, "Pulling: 1/1") {
		t.Errorf("summary %q", got)
	}
	got = summarize(map[string]app.Progress{
		"disk/sha:img": {Phase: "disk", Layer: "sha:img", Status: images.StatusDiskReady},
	})
	if !strings.Contains(got, "Building disk: 1/1") {
		t.Errorf("summary once ready %q", got)
	}
}
