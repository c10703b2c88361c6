package engine

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/fscopy"
)

// CopyToOptions tune CopyTo.
type CopyToOptions struct {
	// NoOverwriteDirNonDir refuses to replace a directory with a non-directory or the reverse.
	NoOverwriteDirNonDir bool
}

// CopyTo unpacks the tar stream r into directory dir of container ref (`docker cp` into a
// container). The stream is first spooled and checked whole, so an archive that is refused writes
// nothing: an entry whose name or hardlink target leaves dir ("../x", "/../x"), an entry beneath a
// symlink of the same archive, a device node or fifo (never created) are refused with ErrInvalid.
// The unpacking itself goes through os.Root (here for a root directory on the host, in the guest's
// agent for a root on disks), so no symlink already in the container can lead a write outside the
// container's root. Files are owned by the unpacking user (the engine's, or the guest's root; no
// chown); permission bits and mtimes are kept.
func (e *Engine) CopyTo(ctx context.Context, ref, dir string, r io.Reader, opts CopyToOptions) error {
	c, root, err := e.containerRoot(ref)
	if err != nil {
		return err
	}
	if root != nil {
		defer root.Close()
	}
	spool, err := os.CreateTemp(e.containerDir(c.snapshot().ID), "cp-*.tar")
	if err != nil {
		return fmt.Errorf("spooling the archive: %w", err)
	}
	defer func() { spool.Close(); os.Remove(spool.Name()) }()
	if _, err := io.Copy(spool, ctxReader{ctx, r}); err != nil {
		return fmt.Errorf("reading the archive: %w", err)
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := fscopy.CheckArchive(tar.NewReader(spool)); err != nil {
		return copyErr(err)
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if root == nil {
		return copyErr(c.inGuest(ctx, func(cl *agentproto.Client) error {
			return cl.CopyTo(ctx, dir, opts.NoOverwriteDirNonDir, spool)
		}))
	}
	rel, err := fscopy.Resolve(root, dir, true)
	if err != nil {
		return copyErr(err)
	}
	fi, err := root.Lstat(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("directory %q in the container: %w", dir, ErrNotFound)
	case err != nil:
		return fmt.Errorf("directory %q in the container: %w", dir, err)
	case !fi.IsDir():
		return fmt.Errorf("extraction point %q is not a directory: %w", dir, ErrInvalid)
	}
	dest, err := root.OpenRoot(rel)
	if err != nil {
		return fmt.Errorf("directory %q in the container: %w", dir, err)
	}
	defer dest.Close()
	return copyErr(fscopy.Extract(ctx, dest, tar.NewReader(spool), opts.NoOverwriteDirNonDir))
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
