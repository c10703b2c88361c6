package images

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Remove removes an image. Given a reference, it removes that name; the image itself goes when no
// other name points at it. Given an ID, it removes the image and all its names. An image a container
// uses (WithInUse) is refused with ErrInUse unless force. Blobs no image needs any more are deleted.
func (s *Store) Remove(ctx context.Context, refOrID string, force bool) error {
	id, err := s.resolve(refOrID)
	if err != nil {
		return err
	}
	byRef := true
	if h := strings.TrimPrefix(strings.TrimSpace(refOrID), "sha256:"); isHex(h) && strings.HasPrefix(hexOf(id), h) {
		byRef = false
	}
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	s.refsMu.Lock()
	refs, err := s.readRefs()
	if err != nil {
		s.refsMu.Unlock()
		return err
	}
	if byRef {
		norm, _ := NormalizeRef(refOrID)
		others := 0
		for ref, rid := range refs {
			if rid == id && ref != norm && !strings.Contains(ref, "@") {
				others++
			}
		}
		if others > 0 {
			// Untag only; the image stays for its other names.
			delete(refs, norm)
			err := s.writeRefs(refs)
			s.refsMu.Unlock()
			return err
		}
	}
	if s.inUse(id) {
		if !force {
			s.refsMu.Unlock()
			return fmt.Errorf("removing image %q (%s): %w", refOrID, shortID(id), ErrInUse)
		}
		s.keepDisk(id) // its containers still run from it
	}
	for ref, rid := range refs {
		if rid == id {
			delete(refs, ref)
		}
	}
	err = s.writeRefs(refs)
	s.refsMu.Unlock()
	if err != nil {
		return err
	}
	if _, err := s.removeImage(id); err != nil {
		return fmt.Errorf("removing image %q: %w", refOrID, err)
	}
	if _, err := s.collectDisks(); err != nil {
		return fmt.Errorf("removing image %q: %w", refOrID, err)
	}
	_, err = s.collectBlobs()
	return err
}

// removeImage takes the image directory out of the listing with one rename, then deletes it.
// Callers hold gcMu exclusively.
func (s *Store) removeImage(id string) (int64, error) {
	dir := s.imageDir(id)
	size := dirSize(dir)
	gone := filepath.Join(s.imagesDir(), ".rm-"+hexOf(id))
	if err := os.Rename(dir, gone); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil
		}
		return 0, err
	}
	return size, forceRemoveAll(gone)
}

// collectBlobs deletes blobs no image record references. Callers hold gcMu exclusively.
func (s *Store) collectBlobs() (int64, error) {
	recs, err := s.records()
	if err != nil {
		return 0, err
	}
	keep := map[string]bool{}
	for _, r := range recs {
		keep[hexOf(r.ID)] = true
		keep[hexOf(r.Digest)] = true
		for _, l := range r.Layers {
			keep[hexOf(l)] = true
		}
	}
	ents, err := os.ReadDir(s.blobDir())
	if err != nil {
		return 0, err
	}
	var freed int64
	for _, e := range ents {
		if keep[e.Name()] {
			continue
		}
		if fi, err := e.Info(); err == nil {
			freed += fi.Size()
		}
		if err := os.Remove(filepath.Join(s.blobDir(), e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return freed, err
		}
	}
	return freed, nil
}

// taggedIDs returns the IDs some tag names; an image with only repo digests is dangling, as in Docker.
func taggedIDs(refs map[string]string) map[string]bool {
	named := map[string]bool{}
	for ref, id := range refs {
		if !strings.Contains(ref, "@") {
			named[id] = true
		}
	}
	return named
}

// Prune removes images without a tag that no container uses, blobs no image needs, and what
// interrupted pulls left behind. It returns the bytes freed.
func (s *Store) Prune(ctx context.Context) (int64, error) {
	s.cleanStale(false)
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	recs, err := s.records()
	if err != nil {
		return 0, err
	}
	refs, err := s.readRefs()
	if err != nil {
		return 0, err
	}
	named := taggedIDs(refs)
	var freed int64
	removed := map[string]bool{}
	for _, r := range recs {
		if named[r.ID] || s.inUse(r.ID) {
			continue
		}
		n, err := s.removeImage(r.ID)
		freed += n
		if err != nil {
			return freed, err
		}
		removed[r.ID] = true
	}
	if len(removed) > 0 {
		if err := s.dropRefs(removed); err != nil {
			return freed, err
		}
	}
	n, err := s.collectDisks()
	freed += n
	if err != nil {
		return freed, err
	}
	n, err = s.collectBlobs()
	return freed + n, err
}

// dropRefs deletes the names (repo digests) of removed images.
func (s *Store) dropRefs(removed map[string]bool) error {
	s.refsMu.Lock()
	defer s.refsMu.Unlock()
	refs, err := s.readRefs()
	if err != nil {
		return err
	}
	for ref, id := range refs {
		if removed[id] {
			delete(refs, ref)
		}
	}
	return s.writeRefs(refs)
}

// DiskUsage reports what the store occupies.
func (s *Store) DiskUsage(ctx context.Context) (DiskUsage, error) {
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	var du DiskUsage
	recs, err := s.records()
	if err != nil {
		return du, err
	}
	refs, err := s.readRefs()
	if err != nil {
		return du, err
	}
	named := taggedIDs(refs)
	keep := map[string]bool{}
	for _, r := range recs {
		du.Images++
		du.RootFSSize += r.Size
		dangling := !named[r.ID] && !s.inUse(r.ID)
		if n := treeSize(filepath.Join(s.imageDir(r.ID), legacyRootfs)); n > 0 {
			du.UnpackedSize += n
			if dangling {
				du.Reclaimable += n
			}
		}
		if dangling {
			continue
		}
		keep[hexOf(r.ID)], keep[hexOf(r.Digest)] = true, true
		for _, l := range r.Layers {
			keep[hexOf(l)] = true
		}
	}
	kept, err := s.neededDisks(func(r *record) bool { return !named[r.ID] && !s.inUse(r.ID) })
	if err != nil {
		return du, err
	}
	disks, _ := os.ReadDir(s.disksDir())
	for _, e := range disks {
		name := e.Name()
		if chain, id, ok := strings.Cut(name, keepInfix); ok && s.inUse("sha256:"+id) {
			kept[chain] = true
		}
	}
	for _, e := range disks {
		name := e.Name()
		if strings.Contains(name, keepInfix) || !strings.HasSuffix(name, diskSuffix) {
			continue
		}
		n := allocated(filepath.Join(s.disksDir(), name))
		du.Disks++
		du.DisksSize += n
		if !kept[strings.TrimSuffix(name, diskSuffix)] {
			du.Reclaimable += n
		}
	}
	ents, err := os.ReadDir(s.blobDir())
	if err != nil {
		return du, err
	}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			continue
		}
		du.Blobs++
		du.BlobsSize += fi.Size()
		if !keep[e.Name()] {
			du.Reclaimable += fi.Size()
		}
	}
	du.Total = du.DisksSize + du.BlobsSize + du.UnpackedSize
	return du, nil
}

func dirSize(dir string) int64 { return treeSize(dir) }
