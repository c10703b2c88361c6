package images

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

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
