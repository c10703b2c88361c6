package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/images/disk"
)

// An image's root filesystem is one read-only ext4 disk (backend/images/disk), built from its
// layers in the content store and shared by every container of the image. It is keyed by the
// layers' chain ID (the OCI chain of diff IDs), what identifies the filesystem: two images that
// differ only in their config share one disk.
//
//	disks/<chain id hex>.ext4          an image disk
//	disks/.<name>.tmp-*                a disk being built (removed by Open)
//	disks/<chain id hex>.keep-<id hex> the disk stays while image <id> is in use, its record gone
//	                                   (a forced rmi of an image a container uses)
const (
	disksDir   = "disks"
	diskSuffix = ".ext4"
	keepInfix  = ".keep-"
)

// Progress statuses of the image disk phase (Progress.Layer is then the image ID).
const (
	StatusBuildingDisk = "building disk" // Done and Total: bytes of file content written so far and in all
	StatusDiskReady    = "disk ready"
)

func (s *Store) disksDir() string { return filepath.Join(s.dir, disksDir) }
func (s *Store) diskPath(chain string) string {
	return filepath.Join(s.disksDir(), hexOf(chain)+diskSuffix)
}

// chainID is the OCI chain ID of diff IDs (base first).
func chainID(diffIDs []v1.Hash) string {
	if len(diffIDs) == 0 {
		sum := sha256.Sum256(nil)
		return "sha256:" + hex.EncodeToString(sum[:])
	}
	c := diffIDs[0].String()
	for _, d := range diffIDs[1:] {
		sum := sha256.Sum256([]byte(c + " " + d.String()))
		c = "sha256:" + hex.EncodeToString(sum[:])
	}
	return c
}

// diffIDs reads the diff IDs of image id from its config blob.
func (s *Store) diffIDs(id string) ([]v1.Hash, error) {
	f, err := os.Open(s.blobPath(id))
	if err != nil {
		return nil, fmt.Errorf("image %s: reading its config: %w", shortID(id), err)
	}
	defer f.Close()
	cf, err := v1.ParseConfigFile(io.LimitReader(f, maxMetadataSize))
	if err != nil {
		return nil, fmt.Errorf("image %s: parsing its config: %w", shortID(id), err)
	}
	return cf.RootFS.DiffIDs, nil
}

// Disk returns the path of the read-only ext4 disk of image refOrID, building it first when it is
// not there yet (an image from before disks, or a disk removed by hand): report, if set, gets
// StatusBuildingDisk updates then StatusDiskReady. Concurrent calls share one build.
func (s *Store) Disk(ctx context.Context, refOrID string, report func(Progress)) (string, error) {
	id, err := s.resolve(refOrID)
	if err != nil {
		return "", err
	}
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	r, err := s.readRecord(id)
	if err != nil {
		return "", err
	}
	if report == nil {
		report = func(Progress) {}
	}
	return s.ensureDisk(ctx, r, report)
}

// ensureDisk builds the disk of r unless it is there. Callers hold gcMu shared (so no Remove or
// Prune deletes the layers meanwhile).
func (s *Store) ensureDisk(ctx context.Context, r *record, report func(Progress)) (string, error) {
	diffIDs, err := s.diffIDs(r.ID)
	if err != nil {
		return "", err
	}
	if len(diffIDs) != len(r.Layers) {
		return "", fmt.Errorf("image %s: %d layers, %d diff IDs in its config", shortID(r.ID), len(r.Layers), len(diffIDs))
	}
	chain := chainID(diffIDs)
	dst := s.diskPath(chain)
	if _, err := os.Stat(dst); err == nil {
		s.dropUnpacked(r.ID)
		return dst, nil
	}
	unlock, err := s.locks.lock(ctx, "disk:"+chain)
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(dst); err == nil { // built by the call this one waited for
		report(Progress{Layer: r.ID, Status: StatusDiskReady})
		return dst, nil
	}
	if err := os.MkdirAll(s.disksDir(), 0o755); err != nil {
		return "", err
	}
	layers := make([]v1.Layer, len(r.Layers))
	verr := &verifyErr{}
	for i, l := range r.Layers {
		h, err := v1.NewHash(l)
		if err != nil {
			return "", fmt.Errorf("image %s: layer %q: %w", shortID(r.ID), l, err)
		}
		fi, err := os.Stat(s.blobPath(l))
		if err != nil {
			return "", fmt.Errorf("image %s: layer %s: %w", shortID(r.ID), l, err)
		}
		layers[i] = &blobLayer{s: s, ctx: ctx, desc: v1.Descriptor{Digest: h, Size: fi.Size()}, diffID: diffIDs[i], verr: verr}
	}
	report(Progress{Layer: r.ID, Status: StatusBuildingDisk})
	// Built under a staging name, renamed once the layers proved to be what their diff IDs say.
	staging := filepath.Join(s.disksDir(), "."+hexOf(chain)+".tmp-verify")
	defer os.Remove(staging)
	err = disk.Build(ctx, layers, staging, disk.Options{
		Log: s.log, MaxLayerSize: s.maxLayer,
		Progress: func(done, total int64) {
			report(Progress{Layer: r.ID, Status: StatusBuildingDisk, Done: done, Total: total})
		},
	})
	if verr.get() != nil {
		err = verr.get() // a corrupt layer explains whatever the builder saw
	}
	if errors.Is(err, disk.ErrTooLarge) {
		err = fmt.Errorf("%w: %w", ErrTooLarge, err)
	}
	if err != nil {
		return "", fmt.Errorf("image %s: building its disk: %w", shortID(r.ID), err)
	}
	if err := os.Rename(staging, dst); err != nil {
		return "", fmt.Errorf("image %s: %w", shortID(r.ID), err)
	}
	_ = syncDir(s.disksDir())
	s.log.Debug("image disk ready", zap.String("id", r.ID), zap.String("disk", dst))
	s.dropUnpacked(r.ID)
	report(Progress{Layer: r.ID, Status: StatusDiskReady})
	return dst, nil
}

// dropUnpacked removes what an image installed before image disks kept next to its record: the
// unpacked rootfs directory and its owners file. Its disk, built from the same layers (still in
// the content store), replaces them; containers created from it had their own copy.
func (s *Store) dropUnpacked(id string) {
	dir := s.imageDir(id)
	old := filepath.Join(dir, legacyRootfs)
	if _, err := os.Lstat(old); err != nil {
		return
	}
	if err := forceRemoveAll(old); err != nil {
		s.log.Warn("removing the unpacked rootfs of an image converted to a disk", zap.String("id", id), zap.Error(err))
		return
	}
	os.Remove(filepath.Join(dir, legacyOwners))
	s.log.Info("image converted: its unpacked rootfs directory is replaced by its disk", zap.String("id", id))
}

// legacyImages counts the images still unpacked as directories (from before image disks).
func (s *Store) legacyImages() int {
	recs, _ := s.records()
	n := 0
	for _, r := range recs {
		if _, err := os.Lstat(filepath.Join(s.imageDir(r.ID), legacyRootfs)); err == nil {
			n++
		}
	}
	return n
}

type verifyErr struct {
	mu  sync.Mutex
	err error
}

func (v *verifyErr) set(err error) {
	v.mu.Lock()
	if v.err == nil {
		v.err = err
	}
	v.mu.Unlock()
}

func (v *verifyErr) get() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.err
}

// blobLayer is a layer of the content store as the disk builder reads it: uncompressed, bounded by
// the store's layer limit, and checked against its diff ID (a mismatch or an overlong layer is
// recorded in verr when the stream is closed, and the build's result is thrown away).
type blobLayer struct {
	s      *Store
	ctx    context.Context
	desc   v1.Descriptor
	diffID v1.Hash
	verr   *verifyErr
}

func (l *blobLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *blobLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *blobLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *blobLayer) MediaType() (types.MediaType, error) { return types.OCIUncompressedLayer, nil }
func (l *blobLayer) Compressed() (io.ReadCloser, error) {
	return os.Open(l.s.blobPath(l.desc.Digest.String()))
}

func (l *blobLayer) Uncompressed() (io.ReadCloser, error) {
	ctx, cancel := context.WithCancel(l.ctx)
	st := &layerStream{chunks: make(chan []byte, streamAhead)}
	go func() {
		defer close(st.chunks)
		st.err = l.s.decompressTo(ctx, l.desc, l.diffID, st.chunks, func(Progress) {})
	}()
	return &verifyingStream{l: l, st: st, cancel: cancel}, nil
}

type verifyingStream struct {
	l      *blobLayer
	st     *layerStream
	cancel context.CancelFunc
}

func (v *verifyingStream) Read(p []byte) (int, error) { return v.st.Read(p) }

// Close reads what the builder left (a tar's padding, or content it did not need) so the whole
// layer is checked, and records a mismatch.
func (v *verifyingStream) Close() error {
	_, err := io.Copy(io.Discard, v.st)
	v.cancel()
	if err != nil && !errors.Is(err, context.Canceled) {
		v.l.verr.set(fmt.Errorf("layer %s: %w", v.l.desc.Digest, err))
	}
	return nil
}

// keepDisk records that the disk of image id must stay while a container uses id, its record
// being removed (a forced Remove). Callers hold gcMu exclusively.
func (s *Store) keepDisk(id string) {
	diffIDs, err := s.diffIDs(id)
	if err != nil {
		return
	}
	p := filepath.Join(s.disksDir(), hexOf(chainID(diffIDs))+keepInfix+hexOf(id))
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		s.log.Warn("keeping the disk of an image in use", zap.String("id", id), zap.Error(err))
	}
}

// collectDisks deletes the disks no image record needs and no container uses, and what an
// interrupted build left. Callers hold gcMu exclusively. It returns the host bytes freed.
func (s *Store) collectDisks() (int64, error) {
	need, err := s.neededDisks(nil)
	if err != nil {
		return 0, err
	}
	ents, err := os.ReadDir(s.disksDir())
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var freed int64
	for _, e := range ents {
		name := e.Name()
		if chain, id, ok := strings.Cut(name, keepInfix); ok {
			if s.inUse("sha256:" + id) {
				need[chain] = true
				continue
			}
			os.Remove(filepath.Join(s.disksDir(), name))
		}
	}
	for _, e := range ents {
		name := e.Name()
		if strings.Contains(name, keepInfix) {
			continue
		}
		if !strings.HasPrefix(name, ".") && need[strings.TrimSuffix(name, diskSuffix)] {
			continue
		}
		p := filepath.Join(s.disksDir(), name)
		freed += allocated(p)
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return freed, err
		}
		s.log.Debug("image disk removed", zap.String("disk", name))
	}
	return freed, nil
}

// neededDisks returns the chain IDs (hex) of the disks of the records, except those skip says.
func (s *Store) neededDisks(skip func(*record) bool) (map[string]bool, error) {
	recs, err := s.records()
	if err != nil {
		return nil, err
	}
	need := map[string]bool{}
	for _, r := range recs {
		if skip != nil && skip(r) {
			continue
		}
		if d, err := s.diffIDs(r.ID); err == nil {
			need[hexOf(chainID(d))] = true
		}
	}
	return need, nil
}

// allocated is the bytes a file occupies on the host (a sparse disk: far less than its size).
func allocated(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return fi.Size()
}
