package images

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Layers are applied in order by one goroutine, but decompressed (and hashed) ahead of it by up to
// GOMAXPROCS producers, each at most streamAhead bytes ahead: decompression is the costly part of
// an unpack, and layers are independent streams, so the next layers decompress while this one is
// written.
const (
	streamChunk = 1 << 20
	streamAhead = 32 // chunks a producer may hold before its layer is applied
)

// layerStream is the uncompressed content of one layer, produced by decompress. Read returns the
// producer's error (a bad diff ID, a corrupt blob, a cancelled context) after the last chunk.
type layerStream struct {
	chunks chan []byte // closed by the producer after setting err
	err    error
	cur    []byte
}

func (l *layerStream) Read(p []byte) (int, error) {
	for len(l.cur) == 0 {
		c, ok := <-l.chunks
		if !ok {
			if l.err != nil {
				return 0, l.err
			}
			return 0, io.EOF
		}
		l.cur = c
	}
	n := copy(p, l.cur)
	l.cur = l.cur[n:]
	return n, nil
}

// unpackLayers applies the layers described by descs (their blobs in the content store) in order.
// ready(ctx, i) blocks until layer i's blob is there (or returns why it will not be).
func (s *Store) unpackLayers(ctx context.Context, ap *applier, descs []v1.Descriptor, diffIDs []v1.Hash,
	ready func(ctx context.Context, i int) error, report func(Progress)) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	streams := make([]*layerStream, len(descs))
	started := make([]chan error, len(descs))
	for i := range started {
		started[i] = make(chan error, 1)
	}
	wg.Add(1)
	go func() { // starts producers in layer order, as blobs arrive and slots free up
		defer wg.Done()
		slots := make(chan struct{}, runtime.GOMAXPROCS(0))
		for i, d := range descs {
			if err := ready(ctx, i); err != nil {
				started[i] <- err
				return
			}
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				started[i] <- ctx.Err()
				return
			}
			streams[i] = &layerStream{chunks: make(chan []byte, streamAhead)}
			wg.Add(1)
			go func(i int, d v1.Descriptor) {
				defer wg.Done()
				defer func() { <-slots }()
				s.decompress(ctx, d, diffIDs[i], streams[i], report)
			}(i, d)
			started[i] <- nil
		}
	}()
	for i, d := range descs {
		var err error
		select {
		case err = <-started[i]:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			return err
		}
		layer := d.Digest.String()
		st := streams[i] // its producer reports "extracting" progress
		if err := ap.applyLayer(ctx, st); err != nil {
			return fmt.Errorf("layer %s: %w", layer, err)
		}
		// The tar may end before the stream (padding); the producer's verdict comes at the end.
		if _, err := io.Copy(io.Discard, st); err != nil {
			return fmt.Errorf("layer %s: %w", layer, err)
		}
		report(Progress{Layer: layer, Done: d.Size, Total: d.Size, Status: "done"})
	}
	return nil
}

// decompress streams one layer blob from the content store into out, uncompressed, and checks its
// diff ID.
func (s *Store) decompress(ctx context.Context, d v1.Descriptor, diffID v1.Hash, out *layerStream,
	report func(Progress)) {
	defer close(out.chunks)
	out.err = s.decompressTo(ctx, d, diffID, out.chunks, report)
}

func (s *Store) decompressTo(ctx context.Context, d v1.Descriptor, diffID v1.Hash, chunks chan<- []byte,
	report func(Progress)) error {
	layer := d.Digest.String()
	f, err := os.Open(s.blobPath(layer))
	if err != nil {
		return err
	}
	defer f.Close()
	cr := &ctxReader{ctx: ctx, r: f, onBytes: func(done int64) {
		report(Progress{Layer: layer, Done: done, Total: d.Size, Status: "extracting"})
	}}
	br := bufio.NewReaderSize(cr, streamChunk)
	head, _ := br.Peek(4)
	var r io.Reader = br
	switch sniff(head) {
	case "gzip":
		zr, err := kgzip.NewReader(br)
		if err != nil {
			return err
		}
		defer zr.Close()
		r = zr
	case "zstd":
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return err
		}
		defer zr.Close()
		r = zr
	}
	// Read one byte beyond the limit, no more: a compression bomb stops here, not when the disk is full.
	r = io.LimitReader(r, s.maxLayer+1)
	var total int64
	h := sha256.New()
	for {
		buf := make([]byte, streamChunk)
		n, rerr := io.ReadFull(r, buf)
		if total += int64(n); total > s.maxLayer {
			return fmt.Errorf("%w: the layer uncompresses to more than %d bytes (the store's limit)", ErrTooLarge, s.maxLayer)
		}
		if n > 0 {
			h.Write(buf[:n])
			select {
			case chunks <- buf[:n]:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if got := hex.EncodeToString(h.Sum(nil)); diffID.Algorithm != "sha256" || got != diffID.Hex {
		return fmt.Errorf("%w: uncompressed content is sha256:%s, the config says %s", ErrDigestMismatch, got, diffID)
	}
	return nil
}
