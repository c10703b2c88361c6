package daemon_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/app/daemon"
	"github.com/skiff-containers/skiff/backend/engine"
	"github.com/skiff-containers/skiff/backend/images"
)

// A second engine started on the data dir of a running one fails with ErrEngineRunning before it
// touches anything: the running engine's pulls in flight (a partial download, an unpack directory, a
// load's spool) are still there.
func TestSecondOpenLeavesTheRunningEnginesPullsAlone(t *testing.T) {
	t.Setenv("SKIFF_HYPERVISOR", "") // the platform's: creating it starts nothing
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	home := t.TempDir()
	st, err := images.Open(filepath.Join(home, "images"))
	if err != nil {
		t.Fatal(err)
	}
	first, err := engine.Open(ctx, engine.Config{Home: home, Images: st})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close(ctx)

	inFlight := []string{
		filepath.Join(home, "images", "blobs", "ingest", strings.Repeat("ab", 32)+"-123456"),
		filepath.Join(home, "images", "blobs", "ingest", "load-42", "archive.tar"),
		filepath.Join(home, "images", "images", ".unpack-0123456789ab-7", "rootfs", "etc", "hostname"),
	}
	for _, p := range inFlight {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("in flight"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	second, err := daemon.Open(ctx, daemon.Config{Home: home})
	if err == nil {
		second.Close(ctx)
		t.Fatal("a second engine opened the data dir of a running one")
	}
	if !errors.Is(err, daemon.ErrEngineRunning) {
		t.Fatalf("second Open: %v, want ErrEngineRunning", err)
	}
	for _, p := range inFlight {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("the second Open removed the running engine's %s: %v", strings.TrimPrefix(p, home), err)
		}
	}

	// Once the first engine is gone, the next Open cleans what it left.
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SKIFF_HYPERVISOR", "hostproc")
	eng, err := daemon.Open(ctx, daemon.Config{Home: home})
	if err != nil {
		if strings.Contains(err.Error(), "agent") {
			t.Skipf("no embedded agent (make agent): %v", err)
		}
		t.Fatal(err)
	}
	defer eng.Close(ctx)
	for _, p := range inFlight {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after the first engine closed and a new one opened: %v", strings.TrimPrefix(p, home), err)
		}
	}
}
