//go:build linux

package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/skiff-containers/skiff/backend/agentproto"
)

// The changes operation (agentproto.OpChanges): `docker diff` of a root on disks, read from the
// overlay's upper directory against the image disk (its lower directory), as Docker reads an
// overlay2 container's.

// identityFiles are written by the agent into every container root (Docker bind-mounts its own
// copies, so they never show in its diff): they are left out of the changes.
var identityFiles = map[string]bool{"/etc/hostname": true, "/etc/hosts": true, "/etc/resolv.conf": true}

// overlayChanges walks upper, an overlay's upper directory over lower, and calls emit for each
// change in path order, a directory before what is in it:
//   - D: a whiteout (a 0/0 character device), or an opaque directory (trusted.overlay.opaque=y)
//     that hides one of lower (its content then follows as A or C);
//   - A: a path lower does not have;
//   - C: a path lower has too (a directory only when its mode or owner changed), and every
//     directory above a change.
func overlayChanges(ctx context.Context, upper, lower string, emit func(agentproto.Change) error) error {
	reported := map[string]bool{} // directories emitted
	return filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(upper, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = "/" + filepath.ToSlash(rel)
		if identityFiles[rel] {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		kind := ""
		lfi, lerr := os.Lstat(filepath.Join(lower, rel))
		switch {
		case isWhiteout(fi):
			kind = agentproto.ChangeDeleted
		case lerr != nil:
			if !errors.Is(lerr, fs.ErrNotExist) && !errors.Is(lerr, syscall.ENOTDIR) {
				return lerr
			}
			kind = agentproto.ChangeAdded
		case fi.IsDir() && isOpaque(p):
			kind = agentproto.ChangeDeleted
		case fi.IsDir() && lfi.IsDir() && sameOwnerMode(fi, lfi):
			// copied up for what is in it: reported only as the parent of a change
		default:
			kind = agentproto.ChangeModified
		}
		if kind == "" {
			return nil
		}
		var up []string // the directories above rel not reported yet, innermost first
		for dir := path.Dir(rel); dir != "/" && !reported[dir]; dir = path.Dir(dir) {
			up = append(up, dir)
		}
		for i := len(up) - 1; i >= 0; i-- {
			reported[up[i]] = true
			if err := emit(agentproto.Change{Path: up[i], Kind: agentproto.ChangeModified}); err != nil {
				return err
			}
		}
		if fi.IsDir() {
			reported[rel] = true
		}
		return emit(agentproto.Change{Path: rel, Kind: kind})
	})
}

func isWhiteout(fi fs.FileInfo) bool {
	if fi.Mode()&fs.ModeCharDevice == 0 {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Rdev == 0
}

func isOpaque(p string) bool {
	buf := make([]byte, 2)
	n, err := unix.Lgetxattr(p, "trusted.overlay.opaque", buf)
	return err == nil && n == 1 && buf[0] == 'y'
}

func sameOwnerMode(a, b fs.FileInfo) bool {
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && a.Mode() == b.Mode() && sa.Uid == sb.Uid && sa.Gid == sb.Gid
}

// changes answers OpChanges: OK, then the changes as JSON values in Data frames, DataEOF.
func (a *Agent) changes(ctx context.Context, c *agentproto.Conn) error {
	if a.cfg.Upper == "" {
		return fmt.Errorf("changes: the container root is not on disks: %w", errNotSupported)
	}
	if err := c.Send(agentproto.OK{}); err != nil {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // the host hanging up ends the walk
		for {
			if _, err := c.Recv(); err != nil {
				cancel()
				return
			}
		}
	}()
	w := &dataWriter{c: c}
	enc := json.NewEncoder(w)
	err := overlayChanges(ctx, a.cfg.Upper, a.cfg.Lower, func(ch agentproto.Change) error { return enc.Encode(ch) })
	if err == nil {
		err = w.flush()
	}
	if err != nil {
		_ = c.Send(agentproto.ErrorMessage(fmt.Errorf("changes: %w", err)))
		return nil
	}
	_ = c.Send(agentproto.DataEOF{})
	return nil
}
