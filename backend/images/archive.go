package images

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Archive formats for Save.
const (
	FormatDocker = "docker" // `docker save`: manifest.json, configs and layers
	FormatOCI    = "oci"    // OCI image layout: oci-layout, index.json, blobs/sha256/*
)

// OCI layout annotations naming an image.
const (
	annotationRefName       = "org.opencontainers.image.ref.name"
	annotationContainerName = "io.containerd.image.name"
)

// Load imports the images of a docker-archive (`docker save`) or OCI-layout tarball and returns
// them. Tagged images get their names back.
func (s *Store) Load(ctx context.Context, r io.Reader, progress func(Progress)) ([]Image, error) {
	if progress == nil {
		progress = func(Progress) {}
	}
	s.gcMu.RLock()
	work, err := os.MkdirTemp(s.ingestDir(), "load-")
	s.gcMu.RUnlock()
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	spool := filepath.Join(work, "archive.tar")
	f, err := os.Create(spool)
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(f, &ctxReader{ctx: ctx, r: r})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("loading: reading the archive: %w", err)
	}
	names, err := tarNames(spool)
	if err != nil {
		return nil, fmt.Errorf("loading: %w", err)
	}
	switch {
	case names["manifest.json"]:
		return s.loadDocker(ctx, spool, progress)
	case names["index.json"] && names["oci-layout"]:
		return s.loadOCI(ctx, spool, filepath.Join(work, "layout"), progress)
	}
	return nil, fmt.Errorf("loading: %w: neither a docker-archive (manifest.json) nor an OCI layout (index.json, oci-layout)", ErrUnsupported)
}

func tarNames(p string) (map[string]bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names := map[string]bool{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names, nil
		}
		if err != nil {
			return nil, fmt.Errorf("not a tar archive: %w", err)
		}
		names[strings.TrimPrefix(filepathClean(h.Name), "./")] = true
	}
}

func filepathClean(n string) string { return filepath.ToSlash(filepath.Clean(n)) }

func (s *Store) loadDocker(ctx context.Context, spool string, progress func(Progress)) ([]Image, error) {
	opener := func() (io.ReadCloser, error) { return os.Open(spool) }
	m, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, fmt.Errorf("loading docker archive: %w", err)
	}
	var out []Image
	for i, d := range m {
		var tag *name.Tag
		var names []string
		for _, t := range d.RepoTags {
			norm, ref, err := parseRef(t)
			if err != nil {
				return nil, fmt.Errorf("loading docker archive: image %d: %w", i, err)
			}
			if tg, ok := ref.(name.Tag); ok && tag == nil {
				tag = &tg
			}
			names = append(names, norm)
		}
		if tag == nil && len(m) > 1 {
			return nil, fmt.Errorf("loading docker archive: image %d (%s) has no tag, and untagged images are only supported in single-image archives", i, d.Config)
		}
		img, err := tarball.Image(opener, tag)
		if err != nil {
			return nil, fmt.Errorf("loading docker archive: image %d: %w", i, err)
		}
		got, err := s.installLoaded(ctx, img, names, progress)
		if err != nil {
			return nil, err
		}
		out = append(out, *got)
	}
	return out, nil
}

func (s *Store) loadOCI(ctx context.Context, spool, dir string, progress func(Progress)) ([]Image, error) {
	if err := extractTar(ctx, spool, dir); err != nil {
		return nil, fmt.Errorf("loading OCI layout: %w", err)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("loading OCI layout: %w", err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("loading OCI layout: %w", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("loading OCI layout: %w", err)
	}
	var out []Image
	for _, d := range im.Manifests {
		var names []string
		if n := layoutName(d.Annotations); n != "" {
			names = append(names, n)
		}
		var img v1.Image
		switch {
		case d.MediaType.IsIndex():
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("loading OCI layout: %w", err)
			}
			cim, err := child.IndexManifest()
			if err != nil {
				return nil, fmt.Errorf("loading OCI layout: %w", err)
			}
			cd, avail, ok := matchManifest(cim, s.platform)
			if !ok {
				return nil, fmt.Errorf("loading OCI layout: %w", platformError(s.platform, avail))
			}
			if img, err = child.Image(cd.Digest); err != nil {
				return nil, fmt.Errorf("loading OCI layout: %w", err)
			}
		case d.MediaType.IsImage():
			if img, err = idx.Image(d.Digest); err != nil {
				return nil, fmt.Errorf("loading OCI layout: %w", err)
			}
		default:
			continue
		}
		got, err := s.installLoaded(ctx, img, names, progress)
		if err != nil {
			return nil, err
		}
		out = append(out, *got)
	}
	return out, nil
}

// layoutName returns the full reference an OCI layout entry names, or "".
func layoutName(ann map[string]string) string {
	for _, k := range []string{annotationContainerName, annotationRefName} {
		v := ann[k]
		if v == "" || !strings.ContainsAny(v, "/:") && k == annotationRefName {
			continue // a bare tag names no repository
		}
		if norm, err := NormalizeRef(v); err == nil {
			return norm
		}
	}
	return ""
}

func (s *Store) installLoaded(ctx context.Context, img v1.Image, names []string, progress func(Progress)) (*Image, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("loading: %w", err)
	}
	plat := v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
	ref := ""
	if len(names) > 0 {
		ref = names[0]
	}
	got, err := s.install(ctx, img, platformString(plat), names, func(p Progress) { p.Ref = ref; progress(p) })
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", ref, err)
	}
	return got, nil
}

// extractTar unpacks an archive into dir with the same safe unpacker as layers.
func extractTar(ctx context.Context, archive, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	root, err := openFSRoot(dir, false)
	if err != nil {
		return err
	}
	defer root.Close()
	ap := newApplier(root, &ownerLog{})
	ap.canOwn = false
	ap.euid, ap.egid = -1, -1
	if err := ap.applyLayer(ctx, f); err != nil {
		return err
	}
	return ap.finish()
}

// Save writes the images refs name (references or IDs) as one archive in format FormatDocker or
// FormatOCI. Images named by reference keep that name in the archive.
func (s *Store) Save(ctx context.Context, w io.Writer, refs []string, format string) error {
	if len(refs) == 0 {
		return errors.New("saving: no images named")
	}
	type entry struct {
		img  v1.Image
		rec  *record
		name string // normalised reference, "" when saved by ID
	}
	var entries []entry
	for _, ref := range refs {
		id, err := s.resolve(ref)
		if err != nil {
			return fmt.Errorf("saving: %w", err)
		}
		rec, err := s.readRecord(id)
		if err != nil {
			return fmt.Errorf("saving: %w", err)
		}
		img, err := s.storedImage(rec)
		if err != nil {
			return fmt.Errorf("saving %q: %w", ref, err)
		}
		n := ""
		if h := strings.TrimPrefix(ref, "sha256:"); !(isHex(h) && strings.HasPrefix(hexOf(id), h)) {
			n, _ = NormalizeRef(ref)
		}
		entries = append(entries, entry{img: img, rec: rec, name: n})
	}
	switch format {
	case FormatDocker, "":
		m := map[name.Reference]v1.Image{}
		for _, e := range entries {
			var ref name.Reference
			var err error
			if e.name != "" && !strings.Contains(e.name, "@") {
				ref, err = name.NewTag(e.name)
			} else {
				ref, err = name.NewDigest("image@" + e.rec.Digest)
			}
			if err != nil {
				return fmt.Errorf("saving: %w", err)
			}
			m[ref] = e.img
		}
		if err := tarball.MultiRefWrite(m, w); err != nil {
			return fmt.Errorf("saving docker archive: %w", err)
		}
		return nil
	case FormatOCI:
		var descs []v1.Descriptor
		blobs := []string{}
		seen := map[string]bool{}
		add := func(dg string) {
			if !seen[dg] {
				seen[dg] = true
				blobs = append(blobs, dg)
			}
		}
		for _, e := range entries {
			d, err := partial.Descriptor(e.img)
			if err != nil {
				return err
			}
			if p, err := v1.ParsePlatform(e.rec.Platform); err == nil {
				d.Platform = p
			}
			if e.name != "" && !strings.Contains(e.name, "@") {
				tag := e.name[strings.LastIndexByte(e.name, ':')+1:]
				d.Annotations = map[string]string{annotationContainerName: e.name, annotationRefName: tag}
			}
			descs = append(descs, *d)
			add(e.rec.Digest)
			add(e.rec.ID)
			for _, l := range e.rec.Layers {
				add(l)
			}
		}
		return s.writeOCI(ctx, w, descs, blobs)
	}
	return fmt.Errorf("saving: unknown format %q (want %q or %q)", format, FormatDocker, FormatOCI)
}

func (s *Store) writeOCI(ctx context.Context, w io.Writer, descs []v1.Descriptor, blobs []string) error {
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: descs}
	ib, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	put := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	if err := put("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := put("index.json", ib); err != nil {
		return err
	}
	for _, dirName := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: dirName, Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
			return err
		}
	}
	for _, dg := range blobs {
		f, err := os.Open(s.blobPath(dg))
		if err != nil {
			return fmt.Errorf("saving: blob %s: %w", dg, err)
		}
		fi, err := f.Stat()
		if err == nil {
			err = tw.WriteHeader(&tar.Header{Name: "blobs/sha256/" + hexOf(dg), Mode: 0o644, Size: fi.Size(), Typeflag: tar.TypeReg})
		}
		if err == nil {
			_, err = io.Copy(tw, &ctxReader{ctx: ctx, r: f})
		}
		f.Close()
		if err != nil {
			return fmt.Errorf("saving: blob %s: %w", dg, err)
		}
	}
	return tw.Close()
}

// storedImage is an image read back from the content store.
type storedImage struct {
	s      *Store
	rec    *record
	rawMf  []byte
	rawCfg []byte
}

func (s *Store) storedImage(rec *record) (v1.Image, error) {
	rawMf, err := s.readBlob(rec.Digest)
	if err != nil {
		return nil, err
	}
	rawCfg, err := s.readBlob(rec.ID)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&storedImage{s: s, rec: rec, rawMf: rawMf, rawCfg: rawCfg})
}

func (i *storedImage) RawConfigFile() ([]byte, error) { return i.rawCfg, nil }
func (i *storedImage) RawManifest() ([]byte, error)   { return i.rawMf, nil }
func (i *storedImage) MediaType() (types.MediaType, error) {
	return types.MediaType(i.rec.ManifestMediaType), nil
}

func (i *storedImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	mf, err := v1.ParseManifest(bytesReader(i.rawMf))
	if err != nil {
		return nil, err
	}
	for _, d := range mf.Layers {
		if d.Digest == h {
			return &storedLayer{path: i.s.blobPath(h.String()), desc: d}, nil
		}
	}
	if mf.Config.Digest == h {
		return &storedLayer{path: i.s.blobPath(h.String()), desc: mf.Config}, nil
	}
	return nil, fmt.Errorf("blob %s: %w", h, ErrNotFound)
}

type storedLayer struct {
	path string
	desc v1.Descriptor
}

func (l *storedLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *storedLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }
func (l *storedLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *storedLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }
