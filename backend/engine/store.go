package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"go.uber.org/zap"
)

// Data-dir layout:
//
//	<home>/engine.lock                 flock held by the running engine
//	<home>/containers/<id>/config.json the record (written atomically)
//	<home>/containers/<id>/upper.ext4  the container's writable layer: a sparse ext4 disk
//	<home>/containers/<id>/rootfs/     the writable root of a container created before disks
//	<home>/containers/<id>/logs/       container.log, container.log.1, ... (JSON lines)
//	<home>/containers/<id>/console.log kernel + agent console
//	<home>/containers/.rm-<id>/        a container being removed (deleted at the next Open)
//	<home>/run/<short id>/             VM state (sockets, pid files); short to fit sun_path
//	<home>/volumes/<name>/             named volumes (volumes.go)
const (
	recordFile     = "config.json"
	removingPrefix = ".rm-"
)

// DefaultHome returns $SKIFF_HOME, else ~/Library/Application Support/Skiff on macOS, else
// $XDG_DATA_HOME/skiff (~/.local/share/skiff).
func DefaultHome() (string, error) {
	if h := os.Getenv("SKIFF_HOME"); h != "" {
		return filepath.Abs(h)
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the data dir: %w", err)
	}
	if runtime.GOOS == "darwin" {
		return filepath.Join(home, "Library", "Application Support", "Skiff"), nil
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "skiff"), nil
	}
	return filepath.Join(home, ".local", "share", "skiff"), nil
}

func (e *Engine) containerDir(id string) string { return filepath.Join(e.home, "containers", id) }
func (e *Engine) stateDir(id string) string     { return filepath.Join(e.home, "run", ShortID(id)) }

// writeFileAtomic writes data to path through a temporary file in the same directory: write, fsync,
// rename, fsync the directory. A crash leaves either the old or the new content, never a torn file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir fsyncs a directory, making the entries created, renamed or removed in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

// removeContainerDir takes a container's directory out of the listing with one rename (to
// containers/.rm-<id>, which loadRecords never reads and deletes), then deletes it. An error means
// the directory is still in place; once renamed, a failure to delete is only logged (the next Open
// deletes it).
func (e *Engine) removeContainerDir(id string) error {
	parent := filepath.Join(e.home, "containers")
	dir, gone := e.containerDir(id), filepath.Join(parent, removingPrefix+id)
	if err := removeAll(gone); err != nil { // a leftover of an earlier attempt
		return fmt.Errorf("removing %s: %w", gone, err)
	}
	if err := os.Rename(dir, gone); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("removing container dir: %w", err)
	}
	if err := syncDir(parent); err != nil {
		if rerr := os.Rename(gone, dir); rerr != nil {
			e.log.Error("restoring container dir after a failed sync", zapID(id), zapErr(rerr))
		}
		return fmt.Errorf("removing container dir: %w", err)
	}
	if err := removeAll(gone); err != nil {
		e.log.Warn("deleting a removed container's dir; the next start retries", zap.String("dir", gone), zap.Error(err))
	}
	return nil
}

// saveRecord persists c (a snapshot, not shared) to its container dir.
func (e *Engine) saveRecord(c *Container) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding record of %s: %w", ShortID(c.ID), err)
	}
	if err := writeFileAtomic(filepath.Join(e.containerDir(c.ID), recordFile), b, 0o600); err != nil {
		return fmt.Errorf("writing record of %s: %w", ShortID(c.ID), err)
	}
	return nil
}

// loadRecords reads every container record; unreadable ones are reported and skipped (a half-created
// container dir without a record is removed).
func (e *Engine) loadRecords() ([]*Container, error) {
	dir := filepath.Join(e.home, "containers")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	var out []*Container
	for _, ent := range ents {
		if strings.HasPrefix(ent.Name(), removingPrefix) {
			// A removal that did not finish: the container was already gone from the listing.
			if err := removeAll(filepath.Join(dir, ent.Name())); err != nil {
				e.log.Warn("deleting a removed container's dir", zap.String("dir", ent.Name()), zap.Error(err))
			}
			continue
		}
		if !ent.IsDir() || strings.HasPrefix(ent.Name(), ".") {
			continue
		}
		p := filepath.Join(dir, ent.Name(), recordFile)
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			e.log.Warn("removing container dir without a record", zap.String("dir", ent.Name()))
			_ = removeAll(filepath.Join(dir, ent.Name()))
			continue
		}
		if err != nil {
			e.log.Warn("skipping unreadable record", zap.String("path", p), zap.Error(err))
			continue
		}
		var c Container
		if err := json.Unmarshal(b, &c); err != nil || c.ID != ent.Name() {
			e.log.Warn("skipping corrupt record", zap.String("path", p), zap.Error(err))
			continue
		}
		out = append(out, &c)
	}
	return out, nil
}
