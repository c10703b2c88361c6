package images

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"go.uber.org/zap"
)

// install makes img present: blobs into the content store, the image's disk built from its layers
// (ensureDisk), the record written, and names pointed at it. The record is written in
// images/.unpack-* and renamed into place as the last step, after the disk, so an image either
// lists complete or not at all.
func (s *Store) install(ctx context.Context, img v1.Image, platform string, names []string,
	report func(Progress)) (*Image, error) {
	// The manifest names the config: no config download for an image already present.
	mf, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	cfgName := mf.Config.Digest
	id := cfgName.String()
	if got, err := s.present(ctx, id, names); err == nil || !errors.Is(err, ErrNotFound) {
		return got, err
	}
	unlock, err := s.locks.lock(ctx, "image:"+id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if got, err := s.present(ctx, id, names); err == nil || !errors.Is(err, ErrNotFound) {
		return got, err
	}
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()

	if err := s.checkSizes(mf); err != nil {
		return nil, fmt.Errorf("image %s: %w", shortID(id), err)
	}
	dg, err := img.Digest()
	if err != nil {
		return nil, err
	}
	rawMf, err := img.RawManifest()
	if err != nil {
		return nil, err
	}
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return nil, err
	}
	if err := s.putBlob(dg, rawMf); err != nil {
		return nil, err
	}
	if err := s.putBlob(cfgName, rawCfg); err != nil {
		return nil, err
	}
	cf, err := v1.ParseConfigFile(bytesReader(rawCfg))
	if err != nil {
		return nil, fmt.Errorf("image config %s: %w", cfgName, err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	if len(layers) != len(mf.Layers) || len(cf.RootFS.DiffIDs) != len(mf.Layers) {
		return nil, fmt.Errorf("image %s: %d layers in the manifest, %d diff IDs in the config",
			shortID(id), len(mf.Layers), len(cf.RootFS.DiffIDs))
	}

	// Downloads run concurrently (bounded).
	dctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	fetchErr := make([]error, len(layers))
	sem := make(chan struct{}, s.jobs)
	for i, l := range layers {
		d := mf.Layers[i]
		report(Progress{Layer: d.Digest.String(), Total: d.Size, Status: "waiting"})
		wg.Add(1)
		go func(i int, l v1.Layer, d v1.Descriptor) {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-dctx.Done():
				fetchErr[i] = dctx.Err()
				return
			}
			defer func() { <-sem }()
			if fetchErr[i] = s.fetchLayer(dctx, l, d, report); fetchErr[i] != nil {
				cancel() // the first failure stops the other downloads
			}
		}(i, l, d)
	}
	wg.Wait()
	for _, err := range fetchErr {
		if err != nil && !errors.Is(err, context.Canceled) {
			return nil, err
		}
	}
	if err := dctx.Err(); err != nil {
		return nil, err
	}
	for _, d := range mf.Layers {
		report(Progress{Layer: d.Digest.String(), Done: d.Size, Total: d.Size, Status: "done"})
	}

	rec := record{
		ID: id, Digest: dg.String(), ManifestMediaType: string(mf.MediaType), Platform: platform,
		Created: cf.Created.Time, Config: toImageConfig(cf.Config),
	}
	for _, l := range mf.Layers {
		rec.Layers = append(rec.Layers, l.Digest.String())
	}
	// The image's disk, from the layers just stored (the record is not written yet: a failed build
	// leaves no image).
	if _, err := s.ensureDisk(ctx, &rec, func(p Progress) {
		if p.Status == StatusBuildingDisk && p.Total > 0 {
			rec.Size = p.Total
		}
		report(p)
	}); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(s.imagesDir(), ".unpack-"+shortID(id)+"-")
	if err != nil {
		return nil, err
	}
	committed := false
	defer func() {
		if !committed {
			forceRemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(tmp, recordFile), b); err != nil {
		return nil, err
	}
	final := s.imageDir(id)
	if _, err := os.Stat(final); err == nil {
		// A directory without a valid record (present() said so): left by an older crash.
		forceRemoveAll(final)
	}
	if err := os.Rename(tmp, final); err != nil {
		return nil, fmt.Errorf("committing image %s: %w", shortID(id), err)
	}
	committed = true
	if err := syncDir(s.imagesDir()); err != nil {
		return nil, err
	}
	s.log.Debug("image installed", zap.String("id", id), zap.Int64("size", rec.Size))
	return s.present(ctx, id, names)
}

// checkSizes refuses a manifest declaring a config or a layer larger than the store reads: the
// declared size bounds each download, so it must itself be bounded.
func (s *Store) checkSizes(mf *v1.Manifest) error {
	if mf.Config.Size < 0 || mf.Config.Size > maxMetadataSize {
		return fmt.Errorf("%w: the config %s declares %d bytes, more than the %d a config may have",
			ErrTooLarge, mf.Config.Digest, mf.Config.Size, maxMetadataSize)
	}
	for _, l := range mf.Layers {
		if l.Size < 0 || l.Size > s.maxLayer {
			return fmt.Errorf("%w: layer %s declares %d bytes, more than the store's limit of %d",
				ErrTooLarge, l.Digest, l.Size, s.maxLayer)
		}
	}
	return nil
}

// present returns the image with ID id after pointing names at it, or ErrNotFound.
func (s *Store) present(ctx context.Context, id string, names []string) (*Image, error) {
	if _, err := s.readRecord(id); err != nil {
		return nil, err
	}
	if err := s.setRefs(id, names...); err != nil {
		return nil, err
	}
	return s.Get(ctx, id)
}

// fetchLayer puts one layer's compressed blob into the content store.
func (s *Store) fetchLayer(ctx context.Context, l v1.Layer, d v1.Descriptor, report func(Progress)) error {
	layer := d.Digest.String()
	existed, err := s.ingest(ctx, d.Digest, d.Size, l.Compressed, func(done int64) {
		report(Progress{Layer: layer, Done: done, Total: d.Size, Status: "downloading"})
	})
	if err != nil {
		return fmt.Errorf("layer %s: %w", layer, err)
	}
	status := "verifying"
	if existed {
		status = "exists"
	}
	report(Progress{Layer: layer, Done: d.Size, Total: d.Size, Status: status})
	return nil
}

// treeSize sums the sizes of regular files below dir, counting each inode once.
func treeSize(dir string) int64 {
	var n int64
	seen := map[uint64]bool{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			if seen[uint64(st.Ino)] {
				return nil
			}
			seen[uint64(st.Ino)] = true
		}
		n += fi.Size()
		return nil
	})
	return n
}

func toImageConfig(c v1.Config) ImageConfig {
	ic := ImageConfig{
		Entrypoint: c.Entrypoint, Cmd: c.Cmd, Env: c.Env, WorkingDir: c.WorkingDir, User: c.User,
		StopSignal: c.StopSignal, Labels: c.Labels,
	}
	for p := range c.ExposedPorts {
		if !strings.Contains(p, "/") {
			p += "/tcp" // Docker's default protocol
		}
		ic.ExposedPorts = append(ic.ExposedPorts, p)
	}
	sort.Strings(ic.ExposedPorts)
	for v := range c.Volumes {
		ic.Volumes = append(ic.Volumes, v)
	}
	sort.Strings(ic.Volumes)
	if h := c.Healthcheck; h != nil && len(h.Test) > 0 {
		ic.Healthcheck = &HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, Retries: h.Retries}
	}
	return ic
}
