package engine

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

// PathStat describes one path in a container's filesystem, as `docker cp` reports it.
type PathStat = fscopy.PathStat

// A container's files are reached where its root is. A root on disks (every container created
// since) is the guest's to read: a running container's agent does the copy; a stopped one gets a
// short-lived VM of its disks, without its workload, for the one operation (guestcopy.go). A root
// directory on the host (a container created before disks) is read through os.Root here.

// containerRoot opens the host root directory of a container created before disks; nil for a
// container whose root is on disks.
func (e *Engine) containerRoot(ref string) (*ctr, *os.Root, error) {
	c, err := e.lookup(ref)
	if err != nil {
		return nil, nil, err
	}
	rec := c.snapshot()
	if rec.RootFS == "" {
		return c, nil, nil
	}
	root, err := os.OpenRoot(rec.RootFS)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the root of container %q: %w", rec.ID, err)
	}
	return c, root, nil
}

// copyErr gives fscopy's and the agent's errors the engine's sentinels.
func copyErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fscopy.ErrNotFound), errors.Is(err, agentproto.ErrNotFound):
		return &sentinelErr{err, ErrNotFound}
	case errors.Is(err, fscopy.ErrInvalid), errors.Is(err, agentproto.ErrBadRequest):
		return &sentinelErr{err, ErrInvalid}
	}
	return err
}

type sentinelErr struct{ err, sentinel error }

func (s *sentinelErr) Error() string   { return s.err.Error() }
func (s *sentinelErr) Unwrap() []error { return []error{s.err, s.sentinel} }

func fromAgentStat(st *agentproto.PathStat) PathStat {
	return PathStat{Name: st.Name, Size: st.Size, Mode: fs.FileMode(st.Mode), Mtime: st.Mtime, LinkTarget: st.LinkTarget}
}

// StatPath describes path p in container ref without following a final symlink.
func (e *Engine) StatPath(ctx context.Context, ref, p string) (PathStat, error) {
	if err := ctx.Err(); err != nil {
		return PathStat{}, err
	}
	c, root, err := e.containerRoot(ref)
	if err != nil {
		return PathStat{}, err
	}
	if root == nil {
		var st PathStat
		err := c.inGuest(ctx, func(cl *agentproto.Client) error {
			s, err := cl.CopyStat(ctx, p)
			if err == nil {
				st = fromAgentStat(s)
			}
			return err
		})
		return st, copyErr(err)
	}
	defer root.Close()
	rel, err := fscopy.Resolve(root, p, false)
	if err != nil {
		return PathStat{}, copyErr(err)
	}
	st, err := fscopy.Stat(root, p, rel)
	return st, copyErr(err)
}

// CopyFrom returns a tar stream of path p in container ref (a file, a symlink, or a directory with
// everything beneath it), its entries named from p's base name as `docker cp` expects, and p's
// stat. A final symlink is archived as the link unless p ends in "/" or "/.".
func (e *Engine) CopyFrom(ctx context.Context, ref, p string) (io.ReadCloser, PathStat, error) {
	c, root, err := e.containerRoot(ref)
	if err != nil {
		return nil, PathStat{}, err
	}
	if root == nil {
		return c.copyFromGuest(ctx, p)
	}
	follow := strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.")
	rel, err := fscopy.Resolve(root, p, follow)
	if err != nil {
		root.Close()
		return nil, PathStat{}, copyErr(err)
	}
	st, err := fscopy.Stat(root, p, rel)
	if err != nil {
		root.Close()
		return nil, PathStat{}, copyErr(err)
	}
	name := st.Name
	if rel == "." {
		name = "."
	}
	pr, pw := io.Pipe()
	go func() {
		defer root.Close()
		tw := tar.NewWriter(pw)
		err := fscopy.Archive(ctx, root, rel, name, tw)
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr, st, nil
}
