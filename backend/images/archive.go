package images

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
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
// them. Tagged images get their names back. The archive is not trusted: an entry that is not a
// regular file or a directory (in a docker archive also a link to another of its entries) fails the
// load with ErrUnsafeEntry naming it, metadata larger than any real one with ErrTooLarge, and every
// read stops when ctx ends.
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
	defer forceRemoveAll(work)
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
	ents, err := scanArchive(ctx, spool)
	if err != nil {
		return nil, fmt.Errorf("loading: %w", err)
	}
	switch {
	case ents["manifest.json"] != nil:
		return s.loadDocker(ctx, spool, ents, progress)
	case ents["index.json"] != nil && ents["oci-layout"] != nil:
		return s.loadOCI(ctx, spool, ents, filepath.Join(work, "layout"), progress)
	}
	return nil, fmt.Errorf("loading: %w: neither a docker-archive (manifest.json) nor an OCI layout (index.json, oci-layout)", ErrUnsupported)
}

// archiveEntries are an archive's entries by cleaned name.
type archiveEntries map[string]*tar.Header

// scanArchive lists the entries of the archive at p, refusing what no archive should hold: devices,
// FIFOs, sparse files, and two entries of one name.
func scanArchive(ctx context.Context, p string) (archiveEntries, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ents := archiveEntries{}
	tr := tar.NewReader(ctxFile{ctx: ctx, f: f})
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return ents, nil
		}
		if err != nil {
			return nil, fmt.Errorf("not a tar archive: %w", err)
		}
		if h.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		if err := plainEntry(h, true); err != nil {
			return nil, fmt.Errorf("archive entry %q: %w", h.Name, err)
		}
		n := archiveName(h.Name)
		if prev := ents[n]; prev != nil && !(prev.Typeflag == tar.TypeDir && h.Typeflag == tar.TypeDir) {
			return nil, fmt.Errorf("%w: archive entry %q appears twice", ErrUnsafeEntry, h.Name)
		}
		ents[n] = h
	}
}

func archiveName(n string) string { return strings.TrimPrefix(path.Clean(n), "./") }

// resolve follows links between entries (by name, inside the archive) to a regular file.
func (e archiveEntries) resolve(name string) (*tar.Header, error) {
	n := archiveName(name)
	for hop := 0; hop <= maxLinkHops; hop++ {
		h := e[n]
		switch {
		case h == nil:
			return nil, fmt.Errorf("archive entry %q: %w", name, fs.ErrNotExist)
		case h.Typeflag == tar.TypeReg:
			return h, nil
		case h.Typeflag == tar.TypeSymlink:
			n = archiveName(path.Join(path.Dir(n), h.Linkname))
		case h.Typeflag == tar.TypeLink:
			n = archiveName(h.Linkname)
		default:
			return nil, fmt.Errorf("%w: archive entry %q is not a file", ErrUnsafeEntry, name)
		}
	}
	return nil, fmt.Errorf("%w: archive entry %q: more than %d links", ErrUnsafeEntry, name, maxLinkHops)
}

// metadata checks that name is a regular file of at most maxMetadataSize bytes.
func (e archiveEntries) metadata(name string) error {
	h, err := e.resolve(name)
	if err != nil {
		return err
	}
	if h.Size > maxMetadataSize {
		return fmt.Errorf("%w: archive entry %q is %d bytes, more than the %d it may have", ErrTooLarge, name, h.Size, maxMetadataSize)
	}
	return nil
}

// ctxFile reads an archive until ctx ends; it seeks, so tar readers skip entries without reading them.
type ctxFile struct {
	ctx context.Context
	f   *os.File
}

func (c ctxFile) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.f.Read(p)
}

func (c ctxFile) Seek(off int64, whence int) (int64, error) { return c.f.Seek(off, whence) }
func (c ctxFile) Close() error                              { return c.f.Close() }

func (s *Store) loadDocker(ctx context.Context, spool string, ents archiveEntries, progress func(Progress)) ([]Image, error) {
	if err := ents.metadata("manifest.json"); err != nil {
		return nil, fmt.Errorf("loading docker archive: %w", err)
	}
	opener := func() (io.ReadCloser, error) {
		f, err := os.Open(spool)
		if err != nil {
			return nil, err
		}
		return ctxFile{ctx: ctx, f: f}, nil
	}
	m, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, fmt.Errorf("loading docker archive: %w", err)
	}
	var out []Image
	for i, d := range m {
		if err := ents.metadata(d.Config); err != nil {
			return nil, fmt.Errorf("loading docker archive: image %d: config: %w", i, err)
		}
		for _, l := range d.Layers {
			if _, err := ents.resolve(l); err != nil {
				return nil, fmt.Errorf("loading docker archive: image %d: layer: %w", i, err)
			}
		}
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

// loadOCI extracts an OCI-layout archive into dir (regular files and directories only) and loads it.
func (s *Store) loadOCI(ctx context.Context, spool string, ents archiveEntries, dir string, progress func(Progress)) ([]Image, error) {
	for n, h := range ents {
		if err := plainEntry(h, false); err != nil {
			return nil, fmt.Errorf("loading OCI layout: archive entry %q: %w", n, err)
		}
	}
	for _, n := range []string{"oci-layout", "index.json"} {
		if err := ents.metadata(n); err != nil {
			return nil, fmt.Errorf("loading OCI layout: %w", err)
		}
	}
	if err := extractTar(ctx, spool, dir); err != nil {
		return nil, fmt.Errorf("loading OCI layout: %w", err)
	}
	imgs, err := s.loadLayout(ctx, dir, progress)
	if err != nil {
		return nil, fmt.Errorf("loading OCI layout: %w", err)
	}
	return imgs, nil
}

// loadLayout loads the images of the OCI layout directory dir, reading nothing in it that is not a
// regular file (see ociDir).
func (s *Store) loadLayout(ctx context.Context, dir string, progress func(Progress)) ([]Image, error) {
	d := &ociDir{ctx: ctx, root: dir}
	im, err := d.index()
	if err != nil {
		return nil, err
	}
	var out []Image
	for _, desc := range im.Manifests {
		var names []string
		if n := layoutName(desc.Annotations); n != "" {
			names = append(names, n)
		}
		var img v1.Image
		switch {
		case desc.MediaType.IsIndex():
			cim, err := d.childIndex(desc)
			if err != nil {
				return nil, err
			}
			cd, avail, ok := matchManifest(cim, s.platform)
			if !ok {
				return nil, platformError(s.platform, avail)
			}
			if img, err = d.image(cd); err != nil {
				return nil, err
			}
		case desc.MediaType.IsImage():
			if img, err = d.image(desc); err != nil {
				return nil, err
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

// extractTar unpacks an archive into dir with the same safe unpacker as layers, regular files and
// directories only.
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
	ap := newApplier(root)
	ap.filesOnly = true
	if err := ap.applyLayer(ctx, ctxFile{ctx: ctx, f: f}); err != nil {
		return err
	}
	return ap.finish()
}
