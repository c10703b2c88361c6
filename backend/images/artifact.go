package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Kernel bundles (and any other set of files) travel as OCI artifacts: an image manifest with an
// artifactType, the empty config, and one layer per file named by its title annotation.
const (
	annotationTitle = "org.opencontainers.image.title"
	emptyConfigType = types.MediaType("application/vnd.oci.empty.v1+json")
	fileMediaType   = types.MediaType("application/octet-stream")
)

// PullArtifact downloads the files of the OCI artifact ref into destDir, replacing it as a whole:
// the files are written and verified in a temporary directory next to it, which is renamed into
// place. It returns the artifact's manifest digest. An index is resolved for the store's platform.
func (s *Store) PullArtifact(ctx context.Context, ref, destDir string, progress func(Progress)) (string, error) {
	if progress == nil {
		progress = func(Progress) {}
	}
	norm, r, err := parseRef(ref)
	if err != nil {
		return "", err
	}
	dg, err := s.pullArtifact(ctx, norm, r, destDir, progress)
	if err != nil {
		return "", fmt.Errorf("pulling artifact %q: %w", norm, err)
	}
	return dg, nil
}

func (s *Store) pullArtifact(ctx context.Context, norm string, r name.Reference, destDir string, progress func(Progress)) (string, error) {
	opts := s.remoteOptions(ctx, nil)
	desc, err := remote.Get(r, opts...)
	if err != nil {
		return "", registryError(err)
	}
	if desc.MediaType.IsIndex() {
		im, err := v1.ParseIndexManifest(bytesReader(desc.Manifest))
		if err != nil {
			return "", err
		}
		d, avail, ok := matchManifest(im, s.platform)
		if !ok {
			return "", platformError(s.platform, avail)
		}
		if desc, err = remote.Get(r.Context().Digest(d.Digest.String()), opts...); err != nil {
			return "", registryError(err)
		}
	}
	mf, err := v1.ParseManifest(bytesReader(desc.Manifest))
	if err != nil {
		return "", fmt.Errorf("%w: manifest: %v", ErrUnsupported, err)
	}
	names := map[string]bool{}
	for _, l := range mf.Layers {
		n := l.Annotations[annotationTitle]
		if err := checkFileName(n); err != nil {
			return "", fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		if names[n] {
			return "", fmt.Errorf("%w: file %q appears twice", ErrUnsupported, n)
		}
		if l.Size < 0 || l.Size > s.maxLayer {
			return "", fmt.Errorf("%w: file %q declares %d bytes, more than the store's limit of %d", ErrTooLarge, n, l.Size, s.maxLayer)
		}
		names[n] = true
	}
	parent, base := filepath.Dir(destDir), filepath.Base(destDir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	for _, l := range mf.Layers {
		name := l.Annotations[annotationTitle]
		layer, err := remote.Layer(r.Context().Digest(l.Digest.String()), opts...)
		if err != nil {
			return "", err
		}
		if err := fetchFile(ctx, layer, l, filepath.Join(tmp, name), func(p Progress) { p.Ref = norm; progress(p) }); err != nil {
			return "", fmt.Errorf("file %q: %w", name, err)
		}
	}
	if err := syncDir(tmp); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	// Swap: the old directory goes aside, the new one takes its name.
	old := ""
	if _, err := os.Lstat(destDir); err == nil {
		old = tmp + ".old"
		if err := os.Rename(destDir, old); err != nil {
			return "", err
		}
	}
	if err := os.Rename(tmp, destDir); err != nil {
		if old != "" {
			os.Rename(old, destDir)
		}
		return "", err
	}
	if old != "" {
		os.RemoveAll(old)
	}
	return desc.Digest.String(), syncDir(parent)
}

func checkFileName(n string) error {
	if n == "" || n == "." || n == ".." || strings.ContainsAny(n, "/\\\x00") {
		return fmt.Errorf("%w: file name %q (the %s annotation) is empty or not a plain name", ErrUnsafeEntry, n, annotationTitle)
	}
	return nil
}

// fetchFile downloads one blob to path, checking size and digest.
func fetchFile(ctx context.Context, l v1.Layer, d v1.Descriptor, path string, report func(Progress)) error {
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	layer := d.Digest.String()
	report(Progress{Layer: layer, Total: d.Size, Status: "downloading"})
	src := io.LimitReader(&ctxReader{ctx: ctx, r: rc, onBytes: func(done int64) {
		report(Progress{Layer: layer, Done: done, Total: d.Size, Status: "downloading"})
	}}, d.Size+1) // a byte beyond the declared size already fails the check below
	n, err := io.Copy(io.MultiWriter(f, h), src)
	if err != nil {
		return err
	}
	if n != d.Size || d.Digest.Algorithm != "sha256" || hex.EncodeToString(h.Sum(nil)) != d.Digest.Hex {
		return fmt.Errorf("%w: got %d bytes hashing to sha256:%x, want %d bytes %s", ErrDigestMismatch, n, h.Sum(nil), d.Size, d.Digest)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	report(Progress{Layer: layer, Done: n, Total: d.Size, Status: "done"})
	return f.Close()
}

// PushArtifact uploads files (name in the artifact → path on disk) as an OCI artifact of
// artifactType to ref, and returns its manifest digest. Credentials come from the Docker keychain;
// loopback registries use plain HTTP.
func PushArtifact(ctx context.Context, ref string, files map[string]string, artifactType string) (string, error) {
	_, r, err := parseRef(ref)
	if err != nil {
		return "", err
	}
	if len(files) == 0 {
		return "", fmt.Errorf("pushing artifact %q: no files", ref)
	}
	names := make([]string, 0, len(files))
	for n := range files {
		if err := checkFileName(n); err != nil {
			return "", fmt.Errorf("pushing artifact %q: %w", ref, err)
		}
		names = append(names, n)
	}
	sort.Strings(names)
	a := &artifact{layers: map[v1.Hash]*fileLayer{}}
	emptyDigest := sha256.Sum256([]byte("{}"))
	mf := v1.Manifest{
		SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: artifactType,
		Config: v1.Descriptor{MediaType: emptyConfigType, Size: 2,
			Digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(emptyDigest[:])}, Data: []byte("{}")},
	}
	for _, n := range names {
		fl, err := newFileLayer(files[n])
		if err != nil {
			return "", fmt.Errorf("pushing artifact %q: %w", ref, err)
		}
		a.layers[fl.digest] = fl
		mf.Layers = append(mf.Layers, v1.Descriptor{MediaType: fileMediaType, Size: fl.size, Digest: fl.digest,
			Annotations: map[string]string{annotationTitle: n}})
	}
	if a.rawManifest, err = json.Marshal(mf); err != nil {
		return "", err
	}
	img, err := partial.CompressedToImage(a)
	if err != nil {
		return "", err
	}
	if err := remote.Write(r, img, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return "", fmt.Errorf("pushing artifact %q: %w", ref, err)
	}
	sum := sha256.Sum256(a.rawManifest)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// artifact is an OCI artifact made of files on disk, as go-containerregistry's image interface.
type artifact struct {
	rawManifest []byte
	layers      map[v1.Hash]*fileLayer
}

func (a *artifact) RawConfigFile() ([]byte, error)      { return []byte("{}"), nil }
func (a *artifact) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (a *artifact) RawManifest() ([]byte, error)        { return a.rawManifest, nil }
func (a *artifact) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if l, ok := a.layers[h]; ok {
		return l, nil
	}
	return nil, fmt.Errorf("artifact blob %s: %w", h, ErrNotFound)
}

type fileLayer struct {
	path   string
	digest v1.Hash
	size   int64
}

func newFileLayer(path string) (*fileLayer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return nil, err
	}
	return &fileLayer{path: path, size: n, digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}}, nil
}

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }
func (l *fileLayer) Size() (int64, error)                { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return fileMediaType, nil }
