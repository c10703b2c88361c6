package engine

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

func testLogger(t testing.TB) *zap.Logger {
	if os.Getenv("SKIFF_TEST_LOG") != "" {
		return zaptest.NewLogger(t)
	}
	return zap.NewNop()
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds or d passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// recordOnDisk writes a container record the way Create leaves it, with a rootfs.
func recordOnDisk(t *testing.T, e *Engine, name string) Container {
	t.Helper()
	rec := Container{ID: NewID(), Name: name, State: StateExited, Created: time.Now().UTC(),
		Config: CreateOptions{Image: "busybox", Restart: RestartPolicy{Name: "no"}}}
	rec.RootFS = filepath.Join(e.containerDir(rec.ID), "rootfs")
	if err := os.MkdirAll(filepath.Join(rec.RootFS, "busy"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := e.saveRecord(&rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

// testTools holds the static helper programs built from testdata/<name> (host arch), once per
// test binary: Debian's busybox-static has no inotifyd and its nc has no -u.
var testTools struct {
	sync.Mutex
	paths map[string]string // name → built binary
}

// installTestTool builds testdata/<name> once and copies it to <rootfs>/<name>.
func installTestTool(t testing.TB, rootfs, name string) {
	t.Helper()
	testTools.Lock()
	defer testTools.Unlock()
	if testTools.paths[name] == "" {
		out := filepath.Join(os.TempDir(), fmt.Sprintf("skiff-%s-%d", name, os.Getpid()))
		cmd := exec.Command("go", "build", "-o", out, "./testdata/"+name)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building testdata/%s: %v\n%s", name, err, b)
		}
		if testTools.paths == nil {
			testTools.paths = map[string]string{}
		}
		testTools.paths[name] = out
	}
	b, err := os.ReadFile(testTools.paths[name])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, name), b, 0o755); err != nil {
		t.Fatal(err)
	}
}
