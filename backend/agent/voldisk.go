//go:build linux

package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Disk volumes (agentproto.MountSpec.Disk): an ext4 block device mounted once under volumesDir,
// whose directory volumeDataDir is bound at the mount's target.
const (
	volumesDir    = disksDir + "/volumes"
	volumeDataDir = "data"
)

// errNoVolumeData: a disk volume mounted read-only has no data directory yet (never written).
var errNoVolumeData = errors.New("the disk volume has never been written")

// volDisk is a mounted disk volume.
type volDisk struct {
	dir string // its mount point
	rw  bool
}

// diskVolumeSource mounts the disk volume whose block device ID is id (once; read-only with noload
// when the device is read-only) and returns its data directory, made on first use, and whether
// the file system is writable.
func (a *Agent) diskVolumeSource(id string) (string, bool, error) {
	if id == "" || filepath.Base(id) != id || id == "." || id == ".." {
		return "", false, fmt.Errorf("disk %q: %w", id, errBadRequest)
	}
	if !a.cfg.VM { // a host process cannot mount an ext4: the hypervisor shares a directory for it
		share, ok := a.cfg.Shares[id]
		if !ok {
			return "", false, fmt.Errorf("disk %q: %w", id, errNotFound)
		}
		dir := filepath.Join(share, volumeDataDir)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return "", false, fmt.Errorf("disk volume %q: %w", id, err)
		}
		return dir, true, nil
	}
	a.mountMu.Lock()
	defer a.mountMu.Unlock()
	d, ok := a.volDisks[id]
	if !ok {
		dev, err := waitDisk("/sys/block", "/dev", id, time.Now().Add(diskWait))
		if err != nil {
			return "", false, fmt.Errorf("%v: %w", err, errNotFound)
		}
		b, _ := os.ReadFile(filepath.Join("/sys/block", filepath.Base(dev), "ro"))
		ro := strings.TrimSpace(string(b)) != "0"
		d = volDisk{dir: filepath.Join(volumesDir, id), rw: !ro}
		if err := os.MkdirAll(d.dir, 0o755); err != nil {
			return "", false, err
		}
		var flags uintptr
		data := upperMountData // read-write: no bitmap prefetch, as on the upper disk
		if ro {
			// noload: no journal replay, which would write; the disk is clean when its last writer
			// shut down (quiesceVolumes).
			flags, data = unix.MS_RDONLY, "noload"
		}
		if err := unix.Mount(dev, d.dir, "ext4", flags, data); err != nil {
			return "", false, fmt.Errorf("mounting disk volume %q (%s) as ext4: %w", id, dev, err)
		}
		a.volDisks[id] = d
	}
	dir := filepath.Join(d.dir, volumeDataDir)
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		if !d.rw {
			return "", false, errNoVolumeData
		}
		if err := os.Mkdir(dir, 0o755); err != nil {
			return "", false, fmt.Errorf("disk volume %q: %w", id, err)
		}
	} else if err != nil {
		return "", false, fmt.Errorf("disk volume %q: %w", id, err)
	}
	return dir, d.rw, nil
}

// quiesceVolumes remounts the writable disk volumes read-only once the workload is gone, as
// quiesceDiskRoot does the upper disk: the host then holds clean file systems, which a later
// read-only user mounts without replaying a journal.
func (a *Agent) quiesceVolumes() {
	a.mountMu.Lock()
	defer a.mountMu.Unlock()
	for id, d := range a.volDisks {
		if !d.rw {
			continue
		}
		if err := unix.Mount("", d.dir, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			a.log.Warn("a disk volume stays writable at shutdown", zap.String("disk", id), zap.Error(err))
		}
	}
}
