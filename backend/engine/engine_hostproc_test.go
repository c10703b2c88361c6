//go:build linux

package engine

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/images"
	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/backend/vm/hostproc"
	"github.com/skiff-containers/skiff/internal/testutil"
)

// The fixture of the hostproc tests (hostproc_*_test.go, *_hostproc_test.go): real containers, the
// real skiff-agent as a host process (backend/vm/hostproc) with the container's cloned rootfs as its
// root, images pulled from an in-process registry holding Debian's busybox-static. Each test has a
// fixture of its own (registry, image store, engine): none depends on another's containers.

type fixture struct {
	t     *testing.T
	home  string
	store *images.Store
	ref   string // busybox image in the test registry
	e     *Engine
	log   *zap.Logger
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	hv := testHypervisor(t)
	host := testutil.Registry(t)
	f := &fixture{t: t, home: t.TempDir(), ref: host + "/busybox:latest", log: testLogger(t)}
	st, err := images.Open(filepath.Join(f.home, "images"), images.WithLogger(f.log))
	if err != nil {
		t.Fatal(err)
	}
	f.store = st
	f.e = f.open(hv)
	t.Cleanup(func() {
		if f.e != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = f.e.Close(ctx)
		}
	})
	return f
}

func (f *fixture) open(hv vm.Hypervisor) *Engine {
	f.t.Helper()
	e, err := Open(context.Background(), Config{Home: filepath.Join(f.home, "engine"), Log: f.log,
		Hypervisor: hv, Images: f.store, ClockSync: time.Hour})
	if err != nil {
		f.t.Fatal(err)
	}
	return e
}

// run creates and starts a container from the busybox image with the shell command sh.
func (f *fixture) run(o CreateOptions, sh string) *Container {
	f.t.Helper()
	o.Image = f.ref
	if sh != "" {
		o.Cmd = []string{"sh", "-c", sh}
	}
	ctx := ctxT(f.t, 2*time.Minute)
	c, err := f.e.Create(ctx, o)
	if err != nil {
		f.t.Fatalf("create: %v", err)
	}
	if err := f.e.Start(ctx, c.ID); err != nil {
		f.t.Fatalf("start: %v", err)
	}
	return c
}

func (f *fixture) wait(id string) int {
	f.t.Helper()
	code, err := f.e.Wait(ctxT(f.t, time.Minute), id)
	if err != nil {
		f.t.Fatalf("wait: %v", err)
	}
	return code
}

// logs returns stdout and stderr as strings (no follow).
func (f *fixture) logs(id string) (string, string) {
	f.t.Helper()
	ch, err := f.e.Logs(ctxT(f.t, time.Minute), id, LogOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	var out, errs strings.Builder
	for l := range ch {
		if l.Stream == "stderr" {
			errs.Write(l.Data)
		} else {
			out.Write(l.Data)
		}
	}
	return out.String(), errs.String()
}

func (f *fixture) inspect(id string) *Container {
	f.t.Helper()
	c, err := f.e.Inspect(context.Background(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// testHypervisor is the host-process backend running the embedded agent (`make agent`); it skips the
// test when the agent is not built or the test does not run as root (host mode needs it).
func testHypervisor(t testing.TB) vm.Hypervisor {
	if os.Geteuid() != 0 {
		t.Skip("the agent in host mode needs root")
	}
	hv, err := hostproc.New(hostproc.Options{})
	if err != nil {
		t.Skipf("no embedded agent (run `make agent`, which `make setup` does): %v", err)
	}
	return hv
}

// waitLog waits until the container's stdout contains want.
func waitLog(t testing.TB, f *fixture, id, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ := f.logs(id)
		if strings.Contains(out, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %q in the container's output; got %q", want, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
