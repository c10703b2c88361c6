package vm

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeBundle writes a small valid bundle for arch into dir.
func fakeBundle(t *testing.T, dir, arch, version string) {
	t.Helper()
	os.MkdirAll(dir, 0o755)
	files := map[string]string{"vmlinuz": "kernel " + version, "a.ko": "a", "b-c.ko": "b"}
	m := Manifest{Arch: arch, Version: version, Kernel: "vmlinuz", Modules: []string{"a.ko", "b-c.ko"}, Files: map[string]string{}}
	for rel, content := range files {
		p := filepath.Join(dir, rel)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		d, _ := fileDigest(p)
		m.Files[rel] = d
	}
	writeManifest(t, dir, m)
}

func writeManifest(t *testing.T, dir string, m Manifest) {
	t.Helper()
	b := &Bundle{Dir: dir, Manifest: m}
	data, _ := json.MarshalIndent(b.Manifest, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, ManifestFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadBundleRejects(t *testing.T) {
	good := t.TempDir()
	fakeBundle(t, good, "amd64", "1")
	b, err := LoadBundle(good)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Verify(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.Digest(), "sha256:") || b.KernelPath() != filepath.Join(good, "vmlinuz") {
		t.Fatalf("digest %q kernel %q", b.Digest(), b.KernelPath())
	}
	for name, mutate := range map[string]func(m *Manifest){
		"bad arch":        func(m *Manifest) { m.Arch = "mips" },
		"no kernel":       func(m *Manifest) { m.Kernel = "" },
		"module escapes":  func(m *Manifest) { m.Modules = append(m.Modules, "../x.ko") },
		"missing digest":  func(m *Manifest) { delete(m.Files, "a.ko") },
		"missing file":    func(m *Manifest) { m.Modules = append(m.Modules, "z.ko"); m.Files["z.ko"] = "sha256:00" },
		"path leaves dir": func(m *Manifest) { m.Files["../../etc/passwd"] = "sha256:00" },
		"subdirectory":    func(m *Manifest) { m.Files["sub/x.ko"] = "sha256:00" },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			fakeBundle(t, dir, "amd64", "1")
			b, _ := LoadBundle(dir)
			mutate(&b.Manifest)
			writeManifest(t, dir, b.Manifest)
			if _, err := LoadBundle(dir); !errors.Is(err, ErrBadBundle) && !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("LoadBundle: %v, want ErrBadBundle", err)
			}
		})
	}
	t.Run("tampered file", func(t *testing.T) {
		dir := t.TempDir()
		fakeBundle(t, dir, "amd64", "1")
		os.WriteFile(filepath.Join(dir, "a.ko"), []byte("evil"), 0o644)
		b, err := LoadBundle(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Verify(); !errors.Is(err, ErrBadBundle) || !strings.Contains(err.Error(), "a.ko") {
			t.Fatalf("Verify: %v", err)
		}
	})
}

func TestResolveKernel(t *testing.T) {
	t.Setenv(EnvKernel, "")
	t.Setenv(EnvKernelDir, "")
	ctx := context.Background()
	src := t.TempDir() // what the "registry" serves
	fakeBundle(t, src, "arm64", "v1")
	online := true
	fetches := 0
	fetch := func(ctx context.Context, ref, dest string) (string, error) {
		fetches++
		if !online {
			return "", errors.New("dial tcp: network is unreachable")
		}
		for _, rel := range []string{"manifest.json", "vmlinuz", "a.ko", "b-c.ko"} {
			data, err := os.ReadFile(filepath.Join(src, rel))
			if err != nil {
				return "", err
			}
			os.MkdirAll(filepath.Dir(filepath.Join(dest, rel)), 0o755)
			os.WriteFile(filepath.Join(dest, rel), data, 0o644)
		}
		b, _ := LoadBundle(src)
		return b.Digest(), nil // any stable digest will do for the cache
	}
	cache := t.TempDir()
	opts := KernelOptions{Arch: "arm64", CacheDir: cache, Ref: "registry.example/skiff/kernel:6.1", Fetch: fetch}

	t.Run("nothing", func(t *testing.T) {
		_, err := ResolveKernel(ctx, KernelOptions{Arch: "arm64", CacheDir: t.TempDir()})
		if !errors.Is(err, ErrKernelNotFound) {
			t.Fatalf("err %v", err)
		}
		for _, want := range []string{EnvKernel, "make kernel", EnvKernelDir, "/arm64/<digest>", "OCI artifact"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error does not mention %q:\n%v", want, err)
			}
		}
	})
	t.Run("pull then cache", func(t *testing.T) {
		b, err := ResolveKernel(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		if b.Manifest.Version != "v1" || !strings.HasPrefix(b.Dir, filepath.Join(cache, "arm64", "sha256-")) {
			t.Fatalf("bundle %+v in %s", b.Manifest, b.Dir)
		}
		// A tag is asked for again at each resolve (each engine start), its bundle cached or not.
		n0 := fetches
		if again, err := ResolveKernel(ctx, opts); err != nil || again.Dir != b.Dir || fetches != n0+1 {
			t.Fatalf("the tag resolved again: %v %v, fetches %d→%d (want one more)", again, err, n0, fetches)
		}
		online = false
		b2, err := ResolveKernel(ctx, opts)
		if err != nil {
			t.Fatalf("offline: %v", err)
		}
		if b2.Dir != b.Dir {
			t.Fatalf("offline resolved %s, want cached %s", b2.Dir, b.Dir)
		}
		// Pinned by digest: no fetch at all.
		n := fetches
		pinned := opts
		pinned.Ref = "registry.example/skiff/kernel@" + strings.Replace(filepath.Base(b.Dir), "-", ":", 1)
		if b3, err := ResolveKernel(ctx, pinned); err != nil || b3.Dir != b.Dir || fetches != n {
			t.Fatalf("pinned: %v %v fetches %d→%d", b3, err, n, fetches)
		}
		// Offline with no ref: the newest cached bundle.
		if b4, err := ResolveKernel(ctx, KernelOptions{Arch: "arm64", CacheDir: cache}); err != nil || b4.Dir != b.Dir {
			t.Fatalf("cache only: %v %v", b4, err)
		}
		// The cache holds only arm64: amd64 is not found, and the error says the pull failed.
		_, err = ResolveKernel(ctx, KernelOptions{Arch: "amd64", CacheDir: cache, Ref: opts.Ref, Fetch: fetch})
		if !errors.Is(err, ErrKernelNotFound) || !strings.Contains(err.Error(), "network is unreachable") {
			t.Fatalf("amd64: %v", err)
		}
		online = true
	})
	t.Run("bad pull is rejected", func(t *testing.T) {
		bad := opts
		bad.CacheDir = t.TempDir()
		bad.Fetch = func(ctx context.Context, ref, dest string) (string, error) {
			d, err := fetch(ctx, ref, dest)
			os.WriteFile(filepath.Join(dest, "vmlinuz"), []byte("tampered"), 0o644)
			return d, err
		}
		if _, err := ResolveKernel(ctx, bad); !errors.Is(err, ErrKernelNotFound) || !strings.Contains(err.Error(), "vmlinuz has digest") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("explicit", func(t *testing.T) {
		parent := t.TempDir()
		fakeBundle(t, filepath.Join(parent, "arm64"), "arm64", "explicit")
		for _, p := range []string{parent, filepath.Join(parent, "arm64")} {
			t.Setenv(EnvKernel, p)
			b, err := ResolveKernel(ctx, opts)
			if err != nil || b.Manifest.Version != "explicit" {
				t.Fatalf("%s=%s: %v %v", EnvKernel, p, b, err)
			}
		}
		t.Setenv(EnvKernel, "")
		t.Setenv(EnvKernelDir, parent)
		if b, err := ResolveKernel(ctx, opts); err != nil || b.Manifest.Version != "explicit" {
			t.Fatalf("%s: %v %v", EnvKernelDir, b, err)
		}
		t.Setenv(EnvKernelDir, "")
		// An explicit path that is wrong is an error, not a silent fallback.
		o := opts
		o.Path = t.TempDir()
		if _, err := ResolveKernel(ctx, o); err == nil || !strings.Contains(err.Error(), "KernelOptions.Path") {
			t.Fatalf("bad explicit path: %v", err)
		}
		// An explicit bundle for the wrong arch is refused.
		o.Path = filepath.Join(parent, "arm64")
		o.Arch = "amd64"
		if _, err := ResolveKernel(ctx, o); !errors.Is(err, ErrBadBundle) {
			t.Fatalf("wrong arch: %v", err)
		}
	})
}

// TestResolveKernelAppBundle: an engine running from Skiff.app finds the
// kernel shipped in Contents/Resources/kernel before $SKIFF_KERNEL_DIR, the
// cache and a registry; an explicit choice still wins.
func TestResolveKernelAppBundle(t *testing.T) {
	t.Setenv(EnvKernel, "")
	ctx := context.Background()
	root := t.TempDir()
	app := filepath.Join(root, "Applications", "Skiff.app")
	gui := filepath.Join(app, "Contents", "MacOS", "Skiff")
	cli := filepath.Join(app, "Contents", "Resources", "bin", "skiff")
	for _, exe := range []string{gui, cli} {
		if got, want := AppKernelDir(exe), filepath.Join(app, "Contents", "Resources", "kernel"); got != want {
			t.Errorf("AppKernelDir(%s) = %q, want %q", exe, got, want)
		}
	}
	for _, exe := range []string{"/usr/local/bin/skiff", "/opt/MacOS/Skiff", filepath.Join(root, "x", "Contents", "MacOS", "Skiff"), filepath.Join(app, "Contents", "Resources", "skiff"), "skiff"} {
		if got := AppKernelDir(exe); got != "" {
			t.Errorf("AppKernelDir(%s) = %q, want none", exe, got)
		}
	}

	appDir := AppKernelDir(gui)
	fakeBundle(t, filepath.Join(appDir, "arm64"), "arm64", "bundled")
	devDir := t.TempDir()
	fakeBundle(t, filepath.Join(devDir, "arm64"), "arm64", "dev")
	fakeBundle(t, filepath.Join(devDir, "amd64"), "amd64", "dev")
	cache := t.TempDir()
	fakeBundle(t, filepath.Join(cache, "arm64", "sha256-00"), "arm64", "cached")
	fetch := func(ctx context.Context, ref, dest string) (string, error) {
		t.Fatalf("pulled %s although the app ships a kernel", ref)
		return "", nil
	}
	t.Setenv(EnvKernelDir, devDir)
	opts := KernelOptions{Arch: "arm64", AppDir: appDir, CacheDir: cache, Ref: "registry.example/kernel:1", Fetch: fetch}
	if b, err := ResolveKernel(ctx, opts); err != nil || b.Manifest.Version != "bundled" {
		t.Fatalf("from the app: %v %v", b, err)
	}
	// The app ships no amd64 bundle here: the next place in the order answers.
	o := opts
	o.Arch = "amd64"
	if b, err := ResolveKernel(ctx, o); err != nil || b.Manifest.Version != "dev" {
		t.Fatalf("amd64: %v %v", b, err)
	}
	// An explicit bundle comes before the app's.
	o = opts
	o.Path = filepath.Join(devDir, "arm64")
	if b, err := ResolveKernel(ctx, o); err != nil || b.Manifest.Version != "dev" {
		t.Fatalf("explicit: %v %v", b, err)
	}
	// Nothing anywhere: the error says the app's kernel is missing.
	t.Setenv(EnvKernelDir, "")
	o = KernelOptions{Arch: "amd64", AppDir: appDir}
	if _, err := ResolveKernel(ctx, o); !errors.Is(err, ErrKernelNotFound) || !strings.Contains(err.Error(), filepath.Join(appDir, "amd64")) {
		t.Fatalf("missing: %v", err)
	}
}
