package disk

import (
	"io"
	"os"
)

// sparseWriter is the disk file as tar2ext4 sees it. Blocks of zeros written past everything
// written so far are skipped, not written, so they stay holes in the host file (the writer zero-fills
// the space it reserves for metadata and the tail of block groups). Anything at or below the
// high-water mark is written as given, zeros included, so a rewrite never leaves stale bytes.
type sparseWriter struct {
	f    *os.File
	pos  int64 // the offset the next Write goes to
	high int64 // end of the bytes actually written
	size int64 // logical size: the furthest offset reached
}

const holeBlock = 4096

func (s *sparseWriter) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		var chunk int
		switch {
		case s.pos < s.high: // a rewrite: as given
			chunk = int(min(int64(len(b)), s.high-s.pos))
		case s.pos%holeBlock != 0: // up to the next block boundary
			chunk = int(min(int64(len(b)), holeBlock-s.pos%holeBlock))
		default:
			// Aligned, past the high-water mark: skip a run of zero blocks, or write a run of
			// blocks that are not all zeros in one call.
			z := 0
			for z+holeBlock <= len(b) && allZero(b[z:z+holeBlock]) {
				z += holeBlock
			}
			if z > 0 {
				s.pos += int64(z)
				s.size = max(s.size, s.pos)
				b = b[z:]
				n += z
				continue
			}
			chunk = holeBlock
			for chunk < len(b) && !(chunk+holeBlock <= len(b) && allZero(b[chunk:chunk+holeBlock])) {
				chunk += holeBlock
			}
			chunk = min(chunk, len(b))
		}
		w, err := s.f.WriteAt(b[:chunk], s.pos)
		s.pos += int64(w)
		s.high = max(s.high, s.pos)
		s.size = max(s.size, s.pos)
		n += w
		if err != nil {
			return n, err
		}
		b = b[chunk:]
	}
	return n, nil
}

func (s *sparseWriter) Read(b []byte) (int, error) {
	n, err := s.f.ReadAt(b, s.pos)
	s.pos += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (s *sparseWriter) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += s.pos
	case io.SeekEnd:
		off += s.size
	}
	if off < 0 {
		return s.pos, os.ErrInvalid
	}
	s.pos = off
	return off, nil
}

// finish gives the file its logical size (a trailing hole has no bytes written).
func (s *sparseWriter) finish() error {
	return s.f.Truncate(s.size)
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
