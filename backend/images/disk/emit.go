package disk

import (
	"archive/tar"
	"context"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// emit writes the flattened image as one tar stream, each name once: the root and the directories
// (parents first), the inodes that carry no content, then, reading the layers again bottom to top,
// each surviving file's content from the entry that carries it. Every inode's other names follow
// it as hard links.
func emit(ctx context.Context, p *plan, layers []v1.Layer, w io.Writer, progress func(done, total int64)) error {
	tw := tar.NewWriter(w)
	if p.root != nil {
		if err := tw.WriteHeader(outHeader(p.root, ".")); err != nil {
			return err
		}
	}
	for _, h := range p.dirs {
		if err := tw.WriteHeader(outHeader(h, h.Name)); err != nil {
			return err
		}
	}
	for _, o := range p.others {
		if err := writeObject(tw, p, o, nil); err != nil {
			return err
		}
	}
	// The last entry of each layer whose content survives: a layer is read up to there, and not at
	// all without one.
	last := make([]int, len(layers))
	for i := range last {
		last[i] = -1
	}
	for k := range p.content {
		last[k[0]] = max(last[k[0]], k[1])
	}
	readers := readAhead(ctx, layers, func(i int) bool { return last[i] >= 0 })
	defer func() {
		for _, r := range readers {
			if r != nil {
				r.Close()
			}
		}
	}()
	var done int64
	buf := make([]byte, 1<<20)
	for i, l := range layers {
		if r := readers[i]; r != nil {
			err := emitLayer(ctx, tw, p, l, i, r, last[i], buf, &done)
			r.Close()
			if err != nil {
				return err
			}
		}
		if progress != nil {
			progress(done, p.dataSize)
		}
	}
	if len(p.content) != 0 {
		// A layer read differently the second time (an opener that is not repeatable).
		return fmt.Errorf("%d files' content was not found on the second read of the layers", len(p.content))
	}
	return tw.Close()
}

func emitLayer(ctx context.Context, tw *tar.Writer, p *plan, l v1.Layer, i int, rc io.Reader, last int,
	buf []byte, done *int64) error {
	tr := tar.NewReader(rc)
	for n := 0; n <= last; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err != nil {
			return layerErr(l, i, fmt.Errorf("reading tar: %w", err))
		}
		o := p.content[[2]int{i, n}]
		if o == nil {
			continue
		}
		if hdr.Name != o.hdr.Name || hdr.Size != o.hdr.Size {
			return layerErr(l, i, fmt.Errorf("entry %q: the layer changed between reads", hdr.Name))
		}
		delete(p.content, [2]int{i, n})
		if err := writeObject(tw, p, o, func(w io.Writer) error {
			_, err := io.CopyBuffer(w, tr, buf)
			return err
		}); err != nil {
			return layerErr(l, i, fmt.Errorf("entry %q: %w", hdr.Name, err))
		}
		*done += o.hdr.Size
	}
	return nil
}

// writeObject writes o under its first name, its content from body, then its other names as links.
func writeObject(tw *tar.Writer, p *plan, o *object, body func(io.Writer) error) error {
	if err := tw.WriteHeader(outHeader(o.hdr, o.path)); err != nil {
		return err
	}
	if body != nil {
		if err := body(tw); err != nil {
			return err
		}
	}
	for _, name := range p.links[o] {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: o.path,
			Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	return nil
}
