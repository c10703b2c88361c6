//go:build linux

package agent

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/fscopy"
)

// The copy operations (agentproto.OpCopyStat, OpCopyFrom, OpCopyTo): `docker cp` on the container
// root the agent mounted, with the same rules as the host applies to a root directory of its own
// (backend/fscopy: os.Root, symlinks resolved as in a chroot).

// copyRoot opens the container root for a copy.
func (a *Agent) copyRoot(spec *agentproto.CopySpec) (*os.Root, error) {
	if spec == nil || spec.Path == "" {
		return nil, fmt.Errorf("copy: no path: %w", errBadRequest)
	}
	r, err := os.OpenRoot(a.root.path)
	if err != nil {
		return nil, fmt.Errorf("copy: opening the container root: %w", err)
	}
	return r, nil
}

// copyErr carries fscopy's sentinels as agent codes.
func copyErr(err error) error {
	switch {
	case errors.Is(err, fscopy.ErrNotFound):
		return fmt.Errorf("%w (%w)", err, errNotFound)
	case errors.Is(err, fscopy.ErrInvalid):
		return fmt.Errorf("%w (%w)", err, errBadRequest)
	}
	return err
}

func toPathStat(st fscopy.PathStat) *agentproto.PathStat {
	return &agentproto.PathStat{Name: st.Name, Size: st.Size, Mode: uint32(st.Mode), Mtime: st.Mtime, LinkTarget: st.LinkTarget}
}

func (a *Agent) copyStat(spec *agentproto.CopySpec) (*agentproto.PathStat, error) {
	root, err := a.copyRoot(spec)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	rel, err := fscopy.Resolve(root, spec.Path, false)
	if err != nil {
		return nil, copyErr(err)
	}
	st, err := fscopy.Stat(root, spec.Path, rel)
	if err != nil {
		return nil, copyErr(err)
	}
	return toPathStat(st), nil
}

// copyFrom sends the stat, then the tar as Data frames and DataEOF (or an Error if it breaks).
func (a *Agent) copyFrom(ctx context.Context, c *agentproto.Conn, spec *agentproto.CopySpec) error {
	root, err := a.copyRoot(spec)
	if err != nil {
		return err
	}
	defer root.Close()
	p := spec.Path
	follow := strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.")
	rel, err := fscopy.Resolve(root, p, follow)
	if err != nil {
		return copyErr(err)
	}
	st, err := fscopy.Stat(root, p, rel)
	if err != nil {
		return copyErr(err)
	}
	if err := c.Send(agentproto.OK{Path: toPathStat(st)}); err != nil {
		return nil
	}
	name := st.Name
	if rel == "." {
		name = "."
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // the host hanging up ends the archive
		for {
			if _, err := c.Recv(); err != nil {
				cancel()
				return
			}
		}
	}()
	w := &dataWriter{c: c}
	tw := tar.NewWriter(w)
	err = fscopy.Archive(ctx, root, rel, name, tw)
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = w.flush()
	}
	if err != nil {
		_ = c.Send(agentproto.ErrorMessage(copyErr(err)))
		return nil
	}
	_ = c.Send(agentproto.DataEOF{})
	return nil
}

// dataWriter sends what is written as Data frames of up to 256 KiB.
type dataWriter struct {
	c   *agentproto.Conn
	buf []byte
}

func (w *dataWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	if len(w.buf) >= 256<<10 {
		if err := w.flush(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (w *dataWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	err := w.c.SendBytes(agentproto.TypeData, w.buf)
	w.buf = w.buf[:0]
	return err
}

// copyTo answers OK when the destination is a directory, unpacks the Data frames that follow as a
// tar, and answers OK (or Error) after DataEOF.
func (a *Agent) copyTo(ctx context.Context, c *agentproto.Conn, spec *agentproto.CopySpec) error {
	root, err := a.copyRoot(spec)
	if err != nil {
		return err
	}
	defer root.Close()
	rel, err := fscopy.Resolve(root, spec.Path, true)
	if err != nil {
		return copyErr(err)
	}
	fi, err := root.Lstat(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("directory %q in the container: %w", spec.Path, errNotFound)
	case err != nil:
		return fmt.Errorf("directory %q in the container: %w", spec.Path, err)
	case !fi.IsDir():
		return fmt.Errorf("extraction point %q is not a directory: %w", spec.Path, errBadRequest)
	}
	dest, err := root.OpenRoot(rel)
	if err != nil {
		return fmt.Errorf("directory %q in the container: %w", spec.Path, err)
	}
	defer dest.Close()
	if err := c.Send(agentproto.OK{}); err != nil {
		return nil
	}
	pr, pw := io.Pipe()
	go func() {
		for {
			m, err := c.Recv()
			if err != nil {
				pw.CloseWithError(fmt.Errorf("the host's stream ended: %w", err))
				return
			}
			switch v := m.(type) {
			case agentproto.Data:
				if _, err := pw.Write(v); err != nil {
					return
				}
			case agentproto.DataEOF:
				pw.Close()
				return
			default:
				pw.CloseWithError(fmt.Errorf("got %s in the archive stream: %w", m.Type(), errBadRequest))
				return
			}
		}
	}()
	err = fscopy.Extract(ctx, dest, tar.NewReader(pr), spec.NoOverwriteDirNonDir)
	if err == nil {
		_, err = io.Copy(io.Discard, pr) // the tar's padding, up to DataEOF
	}
	pr.Close()
	if err != nil {
		return copyErr(err)
	}
	return c.Send(agentproto.OK{})
}
