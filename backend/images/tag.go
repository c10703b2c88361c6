package images

import (
	"context"
	"fmt"
	"strings"
)

// Tag gives the image that src names (a reference or an ID) the name target, a reference with a
// tag (not a digest); a tag that named another image moves. ErrNotFound when src is absent,
// ErrInvalidReference when target does not parse or has a digest.
func (s *Store) Tag(ctx context.Context, src, target string) error {
	norm, err := NormalizeRef(target)
	if err != nil {
		return err
	}
	if strings.Contains(norm, "@") {
		return fmt.Errorf("%w %q: a tag cannot be a digest", ErrInvalidReference, target)
	}
	id, err := s.resolve(src)
	if err != nil {
		return err
	}
	s.gcMu.Lock() // no Remove or Prune between resolving and naming
	defer s.gcMu.Unlock()
	if _, err := s.readRecord(id); err != nil {
		return fmt.Errorf("image %q: %w", src, ErrNotFound)
	}
	if err := s.setRefs(id, norm); err != nil {
		return fmt.Errorf("tagging %s as %s: %w", shortID(id), norm, err)
	}
	return nil
}
