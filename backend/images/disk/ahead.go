package disk

import (
	"context"
	"io"
	"runtime"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Layers are decompressed ahead of the writer, as the store's unpacker does (images/stream.go): up
// to GOMAXPROCS producers, each at most aheadChunks MiB ahead, started in layer order so the layer
// being written always has one.
const (
	aheadChunk  = 1 << 20
	aheadChunks = 32
)

// aheadReader is the uncompressed content of one layer, produced by a goroutine. Read returns the
// producer's error after the last chunk.
type aheadReader struct {
	chunks chan []byte // closed by the producer after setting err
	err    error
	cur    []byte
	cancel context.CancelFunc
}

func (a *aheadReader) Read(p []byte) (int, error) {
	for len(a.cur) == 0 {
		c, ok := <-a.chunks
		if !ok {
			if a.err != nil {
				return 0, a.err
			}
			return 0, io.EOF
		}
		a.cur = c
	}
	n := copy(p, a.cur)
	a.cur = a.cur[n:]
	return n, nil
}

// Close stops the producer (the writer may stop before the end of a layer) and lets it go.
func (a *aheadReader) Close() error {
	a.cancel()
	for range a.chunks {
	}
	return nil
}

// readAhead starts decompressing the layers for which want is true, in order, and returns their
// readers (nil for the others). Every reader must be closed, in order.
func readAhead(ctx context.Context, layers []v1.Layer, want func(i int) bool) []*aheadReader {
	out := make([]*aheadReader, len(layers))
	ctxs := make([]context.Context, len(layers))
	for i := range layers {
		if want(i) {
			lctx, cancel := context.WithCancel(ctx)
			out[i] = &aheadReader{chunks: make(chan []byte, aheadChunks), cancel: cancel}
			ctxs[i] = lctx
		}
	}
	go func() { // starts producers in layer order as slots free up
		slots := make(chan struct{}, runtime.GOMAXPROCS(0))
		for i, a := range out {
			if a == nil {
				continue
			}
			select {
			case slots <- struct{}{}:
			case <-ctxs[i].Done():
				a.err = ctxs[i].Err()
				close(a.chunks)
				continue
			}
			go func() {
				defer func() { <-slots }()
				produce(ctxs[i], a, layers[i])
			}()
		}
	}()
	return out
}

// produce fills a with l's uncompressed content.
func produce(ctx context.Context, a *aheadReader, l v1.Layer) {
	defer close(a.chunks)
	rc, err := openLayer(l)
	if err != nil {
		a.err = err
		return
	}
	defer rc.Close()
	for {
		buf := make([]byte, aheadChunk)
		n, err := io.ReadFull(rc, buf)
		if n > 0 {
			select {
			case a.chunks <- buf[:n]:
			case <-ctx.Done():
				a.err = ctx.Err()
				return
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return
		}
		if err != nil {
			a.err = err
			return
		}
	}
}
