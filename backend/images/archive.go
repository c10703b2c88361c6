package images

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
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
