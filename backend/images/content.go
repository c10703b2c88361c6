package images

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The content store: blobs/sha256/<hex>, each written once through blobs/ingest and a rename after
// its digest and size were verified, so a blob present under its name is always complete and correct.

func (s *Store) hasBlob(dg v1.Hash) bool {
	_, err := os.Stat(s.blobPath(dg.String()))
	return err == nil
}

// putBlob stores small content (a manifest, a config) after checking its digest.
func (s *Store) putBlob(dg v1.Hash, data []byte) error {
	if got := sha256.Sum256(data); dg.Algorithm != "sha256" || hex.EncodeToString(got[:]) != dg.Hex {
		return fmt.Errorf("blob %s: %w", dg, ErrDigestMismatch)
	}
	if s.hasBlob(dg) {
		return nil
	}
	return writeFileSynced(s.blobPath(dg.String()), data)
}

func (s *Store) readBlob(dg string) ([]byte, error) {
	b, err := os.ReadFile(s.blobPath(dg))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", dg, ErrNotFound)
	}
	return b, err
}

// ingest copies the content open returns into the store, verifying digest and size (size < 0: not
// known). onBytes is called as bytes arrive. Concurrent ingests of one digest download it once.
func (s *Store) ingest(ctx context.Context, dg v1.Hash, size int64, open func() (io.ReadCloser, error),
	onBytes func(done int64)) (existed bool, err error) {
	if dg.Algorithm != "sha256" {
		return false, fmt.Errorf("blob %s: %w: digest algorithm %q", dg, ErrUnsupported, dg.Algorithm)
	}
	if s.hasBlob(dg) {
		return true, nil
	}
	unlock, err := s.locks.lock(ctx, "blob:"+dg.String())
	if err != nil {
		return false, err
	}
	defer unlock()
	if s.hasBlob(dg) {
		return true, nil
	}
	f, err := os.CreateTemp(s.ingestDir(), dg.Hex+"-*")
	if err != nil {
		return false, fmt.Errorf("blob %s: %w", dg, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	rc, err := open()
	if err != nil {
		return false, fmt.Errorf("blob %s: %w", dg, err)
	}
	defer rc.Close()
	h := sha256.New()
	var src io.Reader = &ctxReader{ctx: ctx, r: rc, onBytes: onBytes}
	if size >= 0 {
		// One byte more than declared is enough to know the source lies: never copy the rest.
		src = io.LimitReader(src, size+1)
	}
	n, err := io.CopyBuffer(io.MultiWriter(f, h), src, make([]byte, 256<<10))
	if err != nil {
		return false, fmt.Errorf("blob %s: %w", dg, err)
	}
	if size >= 0 && n > size {
		return false, fmt.Errorf("blob %s: %w: more than the %d bytes its descriptor declares", dg, ErrDigestMismatch, size)
	}
	if size >= 0 && n != size {
		return false, fmt.Errorf("blob %s: %w: got %d bytes, want %d", dg, ErrDigestMismatch, n, size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != dg.Hex {
		return false, fmt.Errorf("blob %s: %w: content hashes to sha256:%s", dg, ErrDigestMismatch, got)
	}
	if err = f.Sync(); err != nil {
		return false, fmt.Errorf("blob %s: %w", dg, err)
	}
	if err = f.Close(); err != nil {
		return false, fmt.Errorf("blob %s: %w", dg, err)
	}
	if err = os.Rename(tmp, s.blobPath(dg.String())); err != nil {
		return false, fmt.Errorf("blob %s: %w", dg, err)
	}
	// The directory entry becomes durable with the install's filesystem sync; a crash before that
	// loses the name, never the content under it.
	return false, nil
}

// ctxReader stops reading when ctx ends and reports progress at most every 50 ms.
type ctxReader struct {
	ctx     context.Context
	r       io.Reader
	onBytes func(done int64)
	done    int64
	last    time.Time
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.done += int64(n)
	if c.onBytes != nil {
		if now := time.Now(); err != nil || now.Sub(c.last) >= 50*time.Millisecond {
			c.last = now
			c.onBytes(c.done)
		}
	}
	return n, err
}

// sniff reports the compression of a layer from its first bytes.
func sniff(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return "gzip"
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return "zstd"
	}
	return "none"
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
