package vm_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/internal/testutil"
)

// pushBundle pushes the bundle in dir as a kernel artifact (see vm.KernelFileMediaType).
func pushBundle(ctx context.Context, ref string, b *vm.Bundle) error {
	rels := []string{vm.ManifestFile}
	for rel := range b.Manifest.Files {
		rels = append(rels, rel)
	}
	sort.Strings(rels[1:])
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), vm.KernelConfigMediaType)
	var adds []mutate.Addendum
	for _, rel := range rels {
		data, err := os.ReadFile(filepath.Join(b.Dir, rel))
		if err != nil {
			return err
		}
		adds = append(adds, mutate.Addendum{Layer: static.NewLayer(data, vm.KernelFileMediaType),
			Annotations: map[string]string{vm.AnnotationTitle: rel}})
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		return err
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return err
	}
	return remote.Write(r, img, remote.WithContext(ctx))
}

// fetchBundle is a vm.KernelOptions.Fetch over go-containerregistry, as the
// engine's (through images.Store) would be.
func fetchBundle(ctx context.Context, ref, dest string) (string, error) {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return "", err
	}
	img, err := remote.Image(r, remote.WithContext(ctx))
	if err != nil {
		return "", err
	}
	m, err := img.Manifest()
	if err != nil {
		return "", err
	}
	for _, d := range m.Layers {
		title := d.Annotations[vm.AnnotationTitle]
		if d.MediaType != vm.KernelFileMediaType || !filepath.IsLocal(title) {
			return "", fmt.Errorf("artifact layer %s: media type %q, title %q", d.Digest, d.MediaType, title)
		}
		if err := writeLayer(img, d.Digest, filepath.Join(dest, title)); err != nil {
			return "", err
		}
	}
	dg, err := img.Digest()
	return dg.String(), err
}

func writeLayer(img v1.Image, h v1.Hash, path string) error {
	l, err := img.LayerByDigest(h)
	if err != nil {
		return err
	}
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	os.MkdirAll(filepath.Dir(path), 0o755)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// A bundle pushed to an in-process registry is pulled into the cache by
// digest, boots to the agent, and a graceful stop (agent Shutdown, power-off)
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
	opts := vm.KernelOptions{Arch: "amd64", CacheDir: cache, Ref: ref, Fetch: fetchBundle}
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
	if err := m.Stop(sctx, false); err != nil {
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
	if err := m.Stop(ctx, true); err != nil {
		t.Fatal(err)
	}
	noLeftovers(t, spec.StateDir)
}
