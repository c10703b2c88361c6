//go:build linux

package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/skiff-containers/skiff/backend/agentproto"
)

// The container root from block devices (Boot.Root == agentproto.RootFromDisks;
// docs/contracts.md, "Disk root"): the image's read-only ext4 disk and the
// container's own writable ext4 disk, found by their virtio-blk serials,
// under an overlay.
const (
	disksDir   = "/run/skiff/disks"
	imageMount = disksDir + "/image" // the image disk, read-only
	upperMount = disksDir + "/upper" // the upper disk: upper/ and work/ of the overlay
	// diskWait bounds the wait for a disk: a restored VM's are hot-plugged
	// while it resumes.
	diskWait = 10 * time.Second
)

// upperMountData is the upper disk's ext4 mount options. By default ext4
// reads every block group's bitmap once mounted read-write and builds its
// allocator's cache of each (the prefetch, for a first allocation without
// waits): on the default 32 GiB upper disk, 256 groups and ~2.5 MB of guest
// page cache, written after a restore, so each container's own host memory.
// An empty upper disk writes into a few groups, whose bitmaps load as it
// does.
const upperMountData = "no_prefetch_block_bitmaps"

// mountDiskRoot mounts the image disk and the upper disk and makes their
// overlay the container root at root, shared (as mountRoot does).
func mountDiskRoot(log *zap.Logger, root string) error {
	deadline := time.Now().Add(diskWait)
	image, err := waitDisk("/sys/block", "/dev", agentproto.ImageDiskID, deadline)
	if err != nil {
		return err
	}
	upper, err := waitDisk("/sys/block", "/dev", agentproto.UpperDiskID, deadline)
	if err != nil {
		return err
	}
	log.Debug("disks found", zap.String("image", image), zap.String("upper", upper))
	for _, d := range []string{imageMount, upperMount, root} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := unix.Mount(image, imageMount, "ext4", unix.MS_RDONLY, ""); err != nil {
		return fmt.Errorf("mounting the image disk %q (%s) read-only as ext4: %w", agentproto.ImageDiskID, image, err)
	}
	log.Debug("image disk mounted")
	if err := unix.Mount(upper, upperMount, "ext4", 0, upperMountData); err != nil {
		return fmt.Errorf("mounting the upper disk %q (%s) as ext4: %w", agentproto.UpperDiskID, upper, err)
	}
	log.Debug("upper disk mounted")
	upperDir, workDir := filepath.Join(upperMount, "upper"), filepath.Join(upperMount, "work")
	if err := makeUpper(upperDir, imageMount); err != nil {
		return fmt.Errorf("the upper disk %q: %w", agentproto.UpperDiskID, err)
	}
	if err := os.Mkdir(workDir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("the upper disk %q: %w", agentproto.UpperDiskID, err)
	}
	// index=off: the upper directory must not depend on the image disk's
	// file system UUID (off is the 6.1 kernel's default; pinned here).
	opts := "lowerdir=" + imageMount + ",upperdir=" + upperDir + ",workdir=" + workDir + ",index=off"
	if err := unix.Mount("overlay", root, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mounting the container root (overlay %s) at %s: %w", opts, root, err)
	}
	if err := unix.Mount("", root, "", unix.MS_SHARED, ""); err != nil {
		return fmt.Errorf("making %s shared: %w", root, err)
	}
	return nil
}

// quiesceDiskRoot remounts the upper disk's file system read-only once the
// workload is gone: its journal is then flushed and the file system marked
// clean, so that the host sees a consistent disk (e2fsck -n passes) even
// when it ends the VM right after. A process still writing (an exec'd one)
// makes it fail: the journal still keeps the disk consistent.
func quiesceDiskRoot(log *zap.Logger) {
	if err := unix.Mount("", upperMount, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		log.Warn("the upper disk stays writable at shutdown", zap.Error(err))
		return
	}
	log.Debug("upper disk read-only")
}

// makeUpper creates the overlay's upper directory the first time, with the
// owner and mode of the image's root (the overlay's root takes the upper
// directory's).
func makeUpper(dir, lower string) error {
	if _, err := os.Lstat(dir); err == nil {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Stat(lower, &st); err != nil {
		return fmt.Errorf("the image's root: %w", err)
	}
	tmp := dir + ".new"
	_ = os.RemoveAll(tmp) // an interrupted first boot's
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return err
	}
	if err := os.Chown(tmp, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if err := unix.Chmod(tmp, st.Mode&07777); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

// waitDisk returns the device node (under dev) of the block device whose
// serial (sysBlock/<name>/serial) is id, waiting until deadline for it to
// appear. The error names the disk and says which serials there are.
func waitDisk(sysBlock, dev, id string, deadline time.Time) (string, error) {
	for {
		serials := diskSerials(sysBlock)
		for name, serial := range serials {
			if serial != id {
				continue
			}
			node := filepath.Join(dev, name)
			if _, err := os.Stat(node); err == nil {
				return node, nil
			}
		}
		if time.Now().After(deadline) {
			var found []string
			for name, serial := range serials {
				found = append(found, name+"="+serial)
			}
			sort.Strings(found)
			have := "no block devices"
			if len(found) > 0 {
				have = "block devices " + strings.Join(found, ", ")
			}
			return "", fmt.Errorf("disk %q is not attached: no block device with that serial after %s (%s): %w",
				id, diskWait, have, syscall.ENODEV)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// diskSerials maps each block device's name to its serial ("" when it has
// none).
func diskSerials(sysBlock string) map[string]string {
	ents, _ := os.ReadDir(sysBlock)
	out := map[string]string{}
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(sysBlock, e.Name(), "serial"))
		out[e.Name()] = strings.TrimRight(string(b), "\x00\n ")
	}
	return out
}
