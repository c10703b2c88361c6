package qemu_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/images"
	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/internal/testutil"
)

// pushBundle pushes the bundle as a kernel artifact, as a release would.
func pushBundle(ctx context.Context, ref string, b *vm.Bundle) error {
	files := map[string]string{vm.ManifestFile: filepath.Join(b.Dir, vm.ManifestFile)}
	for name := range b.Manifest.Files {
		files[name] = filepath.Join(b.Dir, name)
	}
	_, err := images.PushArtifact(ctx, ref, files, vm.KernelArtifactType)
	return err
}

// A bundle pushed to an in-process registry is pulled through the image
// store into the cache by digest, boots to the agent, and a graceful stop (agent Shutdown, power-off)
// ends it well before the deadline. Then, offline, the cache still serves.
func TestKernelFromRegistryAndGracefulStop(t *testing.T) {
	local := newEnv(t, "amd64").bundle
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := httptest.NewServer(testutil.RegistryHandler())
	ref := strings.TrimPrefix(srv.URL, "http://") + "/skiff/kernel:" + local.Manifest.Version
	if err := pushBundle(ctx, ref, local); err != nil {
		t.Fatal(err)
	}
	t.Setenv(vm.EnvKernelDir, "")
	t.Setenv(vm.EnvKernel, "")
	cache := t.TempDir()
	store, err := images.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fetch := func(ctx context.Context, ref, dest string) (string, error) {
		return store.PullArtifact(ctx, ref, dest, nil)
	}
	opts := vm.KernelOptions{Arch: "amd64", CacheDir: cache, Ref: ref, Fetch: fetch}
	b, err := vm.ResolveKernel(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.Dir, filepath.Join(cache, "amd64", "sha256-")) || b.Digest() != local.Digest() {
		t.Fatalf("pulled bundle in %s, digest %s (local %s)", b.Dir, b.Digest(), local.Digest())
	}
	srv.Close() // offline from here on
	if b2, err := vm.ResolveKernel(ctx, opts); err != nil || b2.Dir != b.Dir {
		t.Fatalf("offline: %v, %v", b2, err)
	}

	e := newEnvWith(t, b)
	spec := e.spec(t, "pulled", vm.Share{Tag: vm.RootShareTag, HostPath: testutil.BusyboxRootfs(t)})
	m, c := e.start(t, ctx, spec)
	if _, err := c.Hello(ctx); err != nil {
		t.Fatal(err)
	}
	w, err := c.Run(ctx, agentproto.ProcessSpec{Args: []string{"sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	sctx, c2 := context.WithTimeout(ctx, 30*time.Second)
	defer c2()
	t0 := time.Now()
	if err := vm.Shutdown(sctx, m, nil); err != nil {
		t.Fatal(err)
	}
	if sctx.Err() != nil {
		t.Fatalf("the graceful stop ran into its deadline (%v)", time.Since(t0))
	}
	t.Logf("graceful stop: %v", time.Since(t0))
	if m.State() != vm.StateStopped || m.Err() != nil {
		t.Fatalf("state %s, err %v", m.State(), m.Err())
	}
	noLeftovers(t, spec.StateDir)
}

// arm64 smoke: the arm64 bundle and initramfs boot under qemu-system-aarch64
// (TCG) to an agent hello.
func TestAgentVMARM64(t *testing.T) {
	if testing.Short() {
		t.Skip("arm64 under TCG is slow (-short)")
	}
	e := newEnv(t, "arm64")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	spec := e.spec(t, "arm64", vm.Share{Tag: vm.RootShareTag, HostPath: t.TempDir()})
	t0 := time.Now()
	m, c := e.start(t, ctx, spec)
	info, err := c.Hello(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("arm64 start → hello %v: %+v", time.Since(t0), info)
	if info.Arch != "arm64" {
		t.Fatalf("agent arch %q", info.Arch)
	}
	// The ring's BAR is mapped write-combining (Device memory would fault
	// on the unaligned copies).
	if console, _ := os.ReadFile(spec.ConsoleLog); !bytes.Contains(console, []byte("agent channel on the shared-memory ring")) {
		t.Errorf("the arm64 agent channel is not on the ring; console:\n%s", console)
	}
	if err := m.Stop(ctx, true); err != nil {
		t.Fatal(err)
	}
	noLeftovers(t, spec.StateDir)
}
