package cli_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/images"
	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/cli"
	"github.com/skiff-containers/skiff/internal/testutil"
)

// `skiff kernel push` of the bundle `make kernel` built, to an in-process registry: the engine's
// way of fetching kernels (vm.ResolveKernel through images.Store.PullArtifact) gets the same
// bundle back. A bundle with a changed module is refused before anything reaches the registry.
// No daemon and no VM.
func TestKernelPush(t *testing.T) {
	local, err := vm.LoadBundle(filepath.Join("..", "_build", "kernel", "amd64"))
	if err != nil {
		t.Skipf("no amd64 kernel bundle (run `make kernel` to build _build/kernel/amd64): %v", err)
	}
	t.Setenv(vm.EnvKernel, "")
	t.Setenv(vm.EnvKernelDir, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := httptest.NewServer(testutil.RegistryHandler())
	defer srv.Close()
	host := srv.Listener.Addr().String()
	home := t.TempDir()
	run := func(args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		code := cli.Execute(ctx, append([]string{"--home", home}, args...), cli.Options{
			Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb})
		return out.String(), errb.String(), code
	}
	store, err := images.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	resolve := func(ref string) (*vm.Bundle, error) {
		return vm.ResolveKernel(ctx, vm.KernelOptions{Arch: "amd64", Ref: ref, CacheDir: t.TempDir(),
			Fetch: func(ctx context.Context, ref, dir string) (string, error) {
				return store.PullArtifact(ctx, ref, dir, nil)
			}})
	}

	ref := host + "/skiff/kernel:" + local.Manifest.Version
	t0 := time.Now()
	out, errOut, code := run("kernel", "push", "--dir", local.Dir, ref)
	t.Logf("pushed %s in %v", local.Dir, time.Since(t0).Round(time.Millisecond))
	digest := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(digest, "sha256:") || strings.Contains(digest, "\n") || errOut != "" {
		t.Fatalf("kernel push: exit %d, stdout %q, stderr %q; want 0, the digest alone, nothing on stderr (not a terminal)", code, out, errOut)
	}
	b, err := resolve(ref)
	if err != nil {
		t.Fatal(err)
	}
	if b.Digest() != local.Digest() {
		t.Fatalf("resolved bundle has digest %s, the local one %s", b.Digest(), local.Digest())
	}
	if want := strings.ReplaceAll(digest, ":", "-"); filepath.Base(b.Dir) != want {
		t.Errorf("resolved bundle cached in %s, want .../%s (the printed digest)", b.Dir, want)
	}
	if err := b.Verify(); err != nil {
		t.Fatal(err)
	}
	var want []string
	for n := range local.Manifest.Files {
		want = append(want, n)
	}
	want = append(want, vm.ManifestFile)
	sort.Strings(want)
	if got := dirNames(t, b.Dir); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("the artifact holds %v, want manifest.json and the files it lists: %v", got, want)
	}
	// Pinned by the printed digest, it resolves too.
	if b2, err := resolve(host + "/skiff/kernel@" + digest); err != nil || b2.Digest() != local.Digest() {
		t.Fatalf("by digest: %v, %v", b2, err)
	}

	// A file whose bytes changed (a module, or the kernel of a bundle without modules, as Skiff's
	// own): refused, naming the file, and nothing is pushed.
	bad := t.TempDir()
	for n := range local.Manifest.Files {
		copyFile(t, filepath.Join(local.Dir, n), filepath.Join(bad, n))
	}
	copyFile(t, filepath.Join(local.Dir, vm.ManifestFile), filepath.Join(bad, vm.ManifestFile))
	mod := local.Manifest.Kernel
	if n := len(local.Manifest.Modules); n > 0 {
		mod = local.Manifest.Modules[n/2]
	}
	data, err := os.ReadFile(filepath.Join(bad, mod))
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(filepath.Join(bad, mod), data, 0o644); err != nil {
		t.Fatal(err)
	}
	badRef := host + "/skiff/kernel:corrupt"
	out, errOut, code = run("kernel", "push", "--dir", bad, badRef)
	if code == 0 || out != "" || !strings.Contains(errOut, mod) || !strings.Contains(errOut, "not pushing") {
		t.Errorf("push of a corrupt bundle: exit %d, stdout %q, stderr %q; want a failure naming %s", code, out, errOut, mod)
	}
	if _, err := store.PullArtifact(ctx, badRef, t.TempDir(), nil); !errors.Is(err, images.ErrNotFound) {
		t.Errorf("pulling the refused ref: %v, want ErrNotFound", err)
	}
	if b, err := resolve(badRef); !errors.Is(err, vm.ErrKernelNotFound) {
		t.Errorf("resolving the refused ref: %v, %v; want ErrKernelNotFound", b, err)
	}

	// A missing manifest file, a missing REF and a missing default directory.
	os.Remove(filepath.Join(bad, vm.ManifestFile))
	if _, errOut, code := run("kernel", "push", "--dir", bad, badRef); code == 0 || !strings.Contains(errOut, vm.ManifestFile) {
		t.Errorf("push without a manifest: exit %d, stderr %q", code, errOut)
	}
	if _, errOut, code := run("kernel", "push", "--dir", local.Dir); code == 0 || !strings.Contains(errOut, "REF") {
		t.Errorf("push without REF: exit %d, stderr %q", code, errOut)
	}
	t.Chdir(t.TempDir())
	if _, errOut, code := run("kernel", "push", ref); code == 0 || !strings.Contains(errOut, "--dir") ||
		!strings.Contains(errOut, filepath.Join("_build", "kernel", vm.HostArch())) {
		t.Errorf("push without a bundle here: exit %d, stderr %q; want a hint to pass --dir", code, errOut)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
