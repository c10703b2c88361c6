package disk

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/Microsoft/hcsshim/ext4/tar2ext4"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"go.uber.org/zap"

	"github.com/skiff-containers/skiff/backend/images/internal/tarpath"
)

// Errors callers branch on with errors.Is. Messages wrap them with the layer and entry concerned.
var (
	// ErrUnsafeEntry: a layer entry would create, change or remove something outside the image
	// (an absolute name, a ".." above the root, a symlink or hard link leading out of it). The
	// store's unpacker refuses the same entries with images.ErrUnsafeEntry.
	ErrUnsafeEntry = tarpath.ErrUnsafeEntry
	// ErrTooLarge: the image does not fit in Options.MaxSize.
	ErrTooLarge = errors.New("image larger than the disk's maximum size")
)

// Options tune Build. The zero value is usable.
type Options struct {
	// MaxSize bounds the disk image in bytes (default 64 GiB). The disk is only as large as its
	// content; this sizes the metadata reserved for growth and fails Build with ErrTooLarge beyond it.
	MaxSize int64
	// MaxLayerSize, if set, bounds the bytes of file content one layer may write into the disk
	// (sparse entries count in full): a layer beyond it fails Build with ErrTooLarge naming the
	// entry that passes it, before anything is written.
	MaxLayerSize int64
	// Progress, if set, is called after each layer's content is written: bytes of file content in
	// the disk so far and in all (known once the layers were scanned).
	Progress func(done, total int64)
	// Log receives a debug line per build (default: none).
	Log *zap.Logger
}

const defaultMaxSize = 64 << 30

// errWriterStopped is what the flattened stream sees when the ext4 writer stops reading it.
var errWriterStopped = errors.New("the disk writer stopped reading")

// Build writes an ext4 image of the layers, applied bottom (layers[0]) to top, to dst. The file
// appears complete or not at all: it is written to a temporary file in dst's directory, synced and
// renamed. Nothing needs root: owners, modes and device nodes are written into the filesystem image,
// never onto the host. Each layer is read twice: once for its headers (the merge), once for the
// content of the files that survive it. A hostile entry fails with ErrUnsafeEntry naming it.
func Build(ctx context.Context, layers []v1.Layer, dst string, opts Options) (err error) {
	if opts.MaxSize <= 0 {
		opts.MaxSize = defaultMaxSize
	}
	log := opts.Log
	if log == nil {
		log = zap.NewNop()
	}
	start := time.Now()
	t, err := scan(ctx, layers, opts.MaxLayerSize)
	if err != nil {
		return fmt.Errorf("building disk %q: %w", dst, err)
	}
	p := t.plan()
	scanned := time.Since(start)

	f, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return fmt.Errorf("building disk %q: %w", dst, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	sw := &sparseWriter{f: f}
	pr, pw := io.Pipe()
	emitErr := make(chan error, 1)
	go func() {
		err := emit(ctx, p, layers, pw, opts.Progress)
		pw.CloseWithError(err)
		emitErr <- err
	}()
	cerr := tar2ext4.ConvertTarToExt4(pr, sw, tar2ext4.MaximumDiskSize(opts.MaxSize))
	pr.CloseWithError(errWriterStopped)
	// The first failure is the one to report: the stream's (a layer, the context) unless the
	// stream only failed because the writer had stopped on an error of its own.
	if eerr := <-emitErr; eerr != nil && (cerr == nil || !errors.Is(eerr, errWriterStopped)) {
		return fmt.Errorf("building disk %q: %w", dst, eerr)
	}
	if cerr != nil {
		if isTooLarge(cerr) {
			cerr = fmt.Errorf("%w (%d bytes): %v", ErrTooLarge, opts.MaxSize, cerr)
		}
		return fmt.Errorf("building disk %q: %w", dst, cerr)
	}
	if err = sw.finish(); err != nil {
		return fmt.Errorf("building disk %q: %w", dst, err)
	}
	if err = padInodeBitmaps(f); err != nil {
		return fmt.Errorf("building disk %q: %w", dst, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("building disk %q: %w", dst, err)
	}
	if err = f.Chmod(0o644); err != nil {
		return fmt.Errorf("building disk %q: %w", dst, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("building disk %q: %w", dst, err)
	}
	if err = os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("building disk %q: %w", dst, err)
	}
	if d, derr := os.Open(filepath.Dir(dst)); derr == nil {
		d.Sync()
		d.Close()
	}
	log.Debug("image disk built", zap.String("path", dst), zap.Int("layers", len(layers)),
		zap.Int("dirs", len(p.dirs)), zap.Int("files", p.files), zap.Int64("content", p.dataSize),
		zap.Int64("size", sw.size), zap.Duration("scan", scanned), zap.Duration("total", time.Since(start)))
	return nil
}

func isTooLarge(err error) bool {
	// tar2ext4 reports it with an unexported type; its message is all there is.
	return strings.Contains(err.Error(), "disk exceeded maximum size")
}

// scan merges the layers' headers into a new tree. The layers are read (decompressed, the costly
// part) concurrently, up to GOMAXPROCS at a time, and applied in order as each is ready.
func scan(ctx context.Context, layers []v1.Layer, maxLayer int64) (*tree, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		hdrs []*tar.Header
		err  error
	}
	results := make([]chan result, len(layers))
	slots := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	defer wg.Wait()
	for i, l := range layers {
		results[i] = make(chan result, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				results[i] <- result{err: ctx.Err()}
				return
			}
			defer func() { <-slots }()
			hdrs, err := readHeaders(ctx, l)
			results[i] <- result{hdrs, err}
		}()
	}
	t := newTree()
	for i, l := range layers {
		r := <-results[i]
		if r.err != nil {
			return nil, layerErr(l, i, r.err)
		}
		t.beginLayer()
		var size int64
		for n, hdr := range r.hdrs {
			if size += max(hdr.Size, 0); maxLayer > 0 && size > maxLayer {
				return nil, layerErr(l, i, fmt.Errorf("entry %q: %w: the layer writes more than %d bytes (the store's limit)", hdr.Name, ErrTooLarge, maxLayer))
			}
			if err := t.apply(hdr, i, n); err != nil {
				return nil, layerErr(l, i, fmt.Errorf("entry %q: %w", hdr.Name, err))
			}
		}
	}
	return t, nil
}

// readHeaders returns the headers of a layer's entries, in order.
func readHeaders(ctx context.Context, l v1.Layer) ([]*tar.Header, error) {
	rc, err := openLayer(l)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var hdrs []*tar.Header
	tr := tar.NewReader(rc)
	for n := 0; ; n++ {
		if n%64 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return hdrs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading tar: %w", err)
		}
		hdrs = append(hdrs, hdr)
	}
}

func layerErr(l v1.Layer, i int, err error) error {
	if d, derr := l.Digest(); derr == nil {
		return fmt.Errorf("layer %d (%s): %w", i, d, err)
	}
	return fmt.Errorf("layer %d: %w", i, err)
}

// openLayer returns a layer's uncompressed tar. Compressed blobs are decompressed here with
// klauspost's gzip and zstd, as the store does (ggcr's own gunzip is the standard library's, about
// half as fast).
func openLayer(l v1.Layer) (io.ReadCloser, error) {
	mt, err := l.MediaType()
	if err != nil || !mt.IsLayer() || isUncompressed(string(mt)) {
		return l.Uncompressed()
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(rc, 1<<20)
	head, _ := br.Peek(4)
	switch {
	case len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b:
		zr, err := kgzip.NewReader(br)
		if err != nil {
			rc.Close()
			return nil, err
		}
		return &readCloser{Reader: zr, close: func() error { zr.Close(); return rc.Close() }}, nil
	case len(head) == 4 && head[0] == 0x28 && head[1] == 0xb5 && head[2] == 0x2f && head[3] == 0xfd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			rc.Close()
			return nil, err
		}
		return &readCloser{Reader: zr, close: func() error { zr.Close(); return rc.Close() }}, nil
	}
	return &readCloser{Reader: br, close: rc.Close}, nil
}

func isUncompressed(mt string) bool {
	return mt == "application/vnd.oci.image.layer.v1.tar" ||
		mt == "application/vnd.docker.image.rootfs.foreign.diff.tar"
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r *readCloser) Close() error { return r.close() }
