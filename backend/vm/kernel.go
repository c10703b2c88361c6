package vm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.uber.org/zap"
)

// Environment variables ResolveKernel reads.
const (
	// EnvKernel names one bundle directory (or a directory holding <arch>/ bundles).
	EnvKernel = "SKIFF_KERNEL"
	// EnvKernelDir names a directory holding <arch>/ bundles, as `make kernel` writes them.
	EnvKernelDir = "SKIFF_KERNEL_DIR"
)

// KernelArtifactType is the artifactType of a kernel bundle pushed as an OCI
// artifact: one layer per file of the (flat) bundle directory, manifest.json
// included, each named by its org.opencontainers.image.title annotation (as
// images.PushArtifact and images.Store.PullArtifact do).
const KernelArtifactType = "application/vnd.skiff.kernel.v1"

// KernelOptions say where ResolveKernel may find a kernel bundle.
type KernelOptions struct {
	Arch string // "amd64" | "arm64"; empty means the host's
	// Path is an explicit bundle directory (config); empty means $SKIFF_KERNEL,
	// then $SKIFF_KERNEL_DIR/<arch>.
	Path string
	// AppDir holds the <arch>/ bundles shipped inside the app the engine runs
	// from (AppKernelDir of the executable); empty when it runs from elsewhere.
	AppDir string
	// CacheDir holds pulled bundles as <CacheDir>/<arch>/<digest>/.
	CacheDir string
	// Ref is an OCI artifact holding a bundle, fetched through Fetch.
	Ref string
	// Fetch writes the files of the artifact ref into destDir (which exists
	// and is empty) and returns the artifact's manifest digest. The engine wires
	// it to the image store; backend/vm does not talk to registries itself.
	Fetch func(ctx context.Context, ref, destDir string) (digest string, err error)
	// Progress, if set, gets one line per step ("pulling kernel …").
	Progress func(msg string)
	Log      *zap.Logger
}

// ResolveKernel finds a kernel bundle for opts.Arch, in order:
//  1. an explicit path: opts.Path, else $SKIFF_KERNEL (a bundle dir, or a dir holding <arch>/);
//  2. opts.AppDir/<arch>, the bundle shipped in the app the engine runs from
//     (Skiff.app/Contents/Resources/kernel/<arch>, see AppKernelDir);
//  3. $SKIFF_KERNEL_DIR/<arch> (what `make kernel` builds);
//  4. the cache, when opts.Ref pins a digest (name@sha256:…) already cached;
//  5. opts.Ref pulled through opts.Fetch into <CacheDir>/<arch>/<digest>;
//  6. when that fails (offline), the bundle last pulled for opts.Ref, else the
//     newest bundle in <CacheDir>/<arch>.
//
// An explicit path that does not hold a valid bundle is an error (no fallback).
// Nothing found gives an error wrapping ErrKernelNotFound that lists every way
// to provide a kernel.
func ResolveKernel(ctx context.Context, opts KernelOptions) (*Bundle, error) {
	arch := opts.Arch
	if arch == "" {
		arch = HostArch()
	}
	log := opts.Log
	if log == nil {
		log = zap.NewNop()
	}
	progress := func(f string, a ...any) {
		if opts.Progress != nil {
			opts.Progress(fmt.Sprintf(f, a...))
		}
	}
	check := func(b *Bundle, err error) (*Bundle, error) {
		if err != nil {
			return nil, err
		}
		if b.Manifest.Arch != arch {
			return nil, fmt.Errorf("kernel bundle %q is for %s, not %s: %w", b.Dir, b.Manifest.Arch, arch, ErrBadBundle)
		}
		return b, nil
	}

	explicit, source := opts.Path, "KernelOptions.Path"
	if explicit == "" {
		explicit, source = os.Getenv(EnvKernel), "$"+EnvKernel
	}
	if explicit != "" {
		dir := explicit
		if _, err := os.Stat(filepath.Join(dir, ManifestFile)); err != nil {
			dir = filepath.Join(explicit, arch)
		}
		b, err := check(LoadBundle(dir))
		if err != nil {
			return nil, fmt.Errorf("kernel from %s=%q: %w", source, explicit, err)
		}
		return b, nil
	}
	for _, d := range []string{opts.AppDir, os.Getenv(EnvKernelDir)} {
		if d == "" {
			continue
		}
		dir := filepath.Join(d, arch)
		if _, err := os.Stat(filepath.Join(dir, ManifestFile)); err == nil {
			return check(LoadBundle(dir))
		}
	}

	var archCache string
	if opts.CacheDir != "" {
		archCache = filepath.Join(opts.CacheDir, arch)
	}
	var fetchErr error
	if opts.Ref != "" && archCache != "" {
		if i := strings.Index(opts.Ref, "@sha256:"); i >= 0 {
			if b, err := check(LoadBundle(filepath.Join(archCache, cacheName(opts.Ref[i+1:])))); err == nil {
				return b, nil
			}
		}
		if opts.Fetch != nil {
			progress("pulling kernel %s", opts.Ref)
			b, err := fetchBundle(ctx, opts, archCache, arch)
			if err == nil {
				return b, nil
			}
			fetchErr = err
			log.Warn("pulling kernel bundle failed; trying the cache", zap.String("ref", opts.Ref), zap.Error(err))
		}
		if d, err := os.ReadFile(filepath.Join(archCache, refFile(opts.Ref))); err == nil {
			if b, err := check(LoadBundle(filepath.Join(archCache, strings.TrimSpace(string(d))))); err == nil {
				return b, nil
			}
		}
	}
	if archCache != "" {
		if b := newestCached(archCache, arch); b != nil {
			return b, nil
		}
	}

	var ways []string
	if opts.AppDir != "" {
		ways = append(ways, fmt.Sprintf("reinstall the app: its kernel %s is missing", filepath.Join(opts.AppDir, arch)))
	}
	ways = append(ways,
		fmt.Sprintf("set %s=<bundle dir> (a directory with %s, e.g. _build/kernel/%s)", EnvKernel, ManifestFile, arch),
		fmt.Sprintf("run `make kernel` (builds _build/kernel/<arch>; found through %s)", EnvKernelDir))
	if archCache != "" {
		ways = append(ways, fmt.Sprintf("put a bundle in %s/<digest>/", archCache))
	} else {
		ways = append(ways, "configure a kernel cache directory")
	}
	if opts.Ref != "" {
		w := fmt.Sprintf("pull the OCI artifact %s (needs the network", opts.Ref)
		if fetchErr != nil {
			w += fmt.Sprintf("; it failed: %v", fetchErr)
		}
		ways = append(ways, w+")")
	} else {
		ways = append(ways, "configure a kernel OCI artifact reference to pull")
	}
	return nil, fmt.Errorf("no kernel bundle for %s: %w; to provide one:\n  - %s",
		arch, ErrKernelNotFound, strings.Join(ways, "\n  - "))
}

// AppKernelDir is where the app bundle that executable exe belongs to keeps
// its kernel bundles: <X>.app/Contents/Resources/kernel, when exe is the app's
// main executable (Contents/MacOS/…) or its command-line tool
// (Contents/Resources/bin/skiff), else "". exe should have its symlinks
// resolved (a CLI linked into ~/.local/bin finds the app it belongs to).
func AppKernelDir(exe string) string {
	dir := filepath.Dir(filepath.Clean(exe))
	var contents string
	switch {
	case filepath.Base(dir) == "MacOS":
		contents = filepath.Dir(dir)
	case filepath.Base(dir) == "bin" && filepath.Base(filepath.Dir(dir)) == "Resources":
		contents = filepath.Dir(filepath.Dir(dir))
	default:
		return ""
	}
	if filepath.Base(contents) != "Contents" || !strings.HasSuffix(filepath.Dir(contents), ".app") {
		return ""
	}
	return filepath.Join(contents, "Resources", "kernel")
}

// fetchBundle pulls opts.Ref into a temporary dir, checks it and moves it to
// <archCache>/<digest>, recording which digest the ref resolved to.
func fetchBundle(ctx context.Context, opts KernelOptions, archCache, arch string) (*Bundle, error) {
	if err := os.MkdirAll(archCache, 0o755); err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	tmp, err := os.MkdirTemp(archCache, ".pull-")
	if err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	digest, err := opts.Fetch(ctx, opts.Ref, tmp)
	if err != nil {
		return nil, fmt.Errorf("pulling kernel %q: %w", opts.Ref, err)
	}
	if !strings.HasPrefix(digest, "sha256:") {
		return nil, fmt.Errorf("pulling kernel %q: fetch returned digest %q, want sha256:…", opts.Ref, digest)
	}
	b, err := LoadBundle(tmp)
	if err == nil {
		err = b.Verify()
	}
	if err == nil && b.Manifest.Arch != arch {
		err = fmt.Errorf("bundle is for %s, not %s: %w", b.Manifest.Arch, arch, ErrBadBundle)
	}
	if err != nil {
		return nil, fmt.Errorf("pulling kernel %q: %w", opts.Ref, err)
	}
	dest := filepath.Join(archCache, cacheName(digest))
	if _, err := os.Stat(filepath.Join(dest, ManifestFile)); err != nil {
		os.RemoveAll(dest)
		if err := os.Rename(tmp, dest); err != nil {
			return nil, fmt.Errorf("kernel cache: %w", err)
		}
	}
	if err := WriteFileAtomic(filepath.Join(archCache, refFile(opts.Ref)), []byte(cacheName(digest)+"\n")); err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	return LoadBundle(dest)
}

// cacheName turns "sha256:abc" into a directory name.
func cacheName(digest string) string { return strings.ReplaceAll(digest, ":", "-") }

// refFile names the file recording the digest a ref last resolved to.
func refFile(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return ".ref-" + hex.EncodeToString(sum[:8])
}

func newestCached(archCache, arch string) *Bundle {
	ents, err := os.ReadDir(archCache)
	if err != nil {
		return nil
	}
	type cand struct {
		b   *Bundle
		mod int64
	}
	var cs []cand
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := LoadBundle(filepath.Join(archCache, e.Name()))
		if err != nil || b.Manifest.Arch != arch {
			continue
		}
		info, err := os.Stat(filepath.Join(b.Dir, ManifestFile))
		if err != nil {
			continue
		}
		cs = append(cs, cand{b, info.ModTime().UnixNano()})
	}
	if len(cs) == 0 {
		return nil
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].mod > cs[j].mod })
	return cs[0].b
}

// WriteFileAtomic writes data to a temporary file next to path and renames it.
func WriteFileAtomic(path string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
