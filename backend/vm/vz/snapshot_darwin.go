//go:build darwin

package vz

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/skiff-containers/skiff/backend/vm/snapcache"
)

// The boot snapshots' set-up on both Macs (snapshot.go says what they are;
// snapshot_darwin_arm64.go makes and restores them; on Intel, where the
// framework saves no VM, snapshot_darwin_amd64.go boots cold).

// snapshotState is the hypervisor's snapshot set-up.
type snapshotState struct {
	snaps *snapcache.Cache
	// unsupported says why this Mac boots cold (nil: it can save and restore).
	unsupported error
	osBuild     string // macOS version and build: in the keys
	seen        seenKeys
}

// newSnapshotState decides, once, whether this Mac can snapshot; off when
// SKIFF_NO_SNAPSHOTS=1 (as under QEMU).
func newSnapshotState(log *zap.Logger) snapshotState {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	s := snapshotState{snaps: snapcache.New(filepath.Join(dir, "skiff", "kernels", "snapshots"), snapshotVersion, log)}
	version, _ := unix.Sysctl("kern.osproductversion")
	build, _ := unix.Sysctl("kern.osversion")
	s.osBuild = version + " " + build
	s.unsupported = snapshotsSupported(version, runtime.GOARCH)
	if os.Getenv("SKIFF_NO_SNAPSHOTS") == "1" {
		s.unsupported = fmt.Errorf("SKIFF_NO_SNAPSHOTS=1")
	}
	if s.unsupported != nil {
		log.Debug("vz boot snapshots off; every VM boots cold", zap.Error(s.unsupported))
	}
	return s
}

// CacheUsage counts the complete boot snapshots and the disk space they
// take. See vm.CacheReporter.
func (h *vzHypervisor) CacheUsage() (entries int, bytes int64) { return h.snap.snaps.Usage() }

// readLine reads one line of at most 4096 bytes from the agent, a byte at
// a time (nothing may be read past it: the stream is the agent's after).
func readLine(r io.Reader) (string, error) {
	var line []byte
	b := make([]byte, 1)
	for len(line) < 4096 {
		if _, err := io.ReadFull(r, b); err != nil {
			return "", err
		}
		if b[0] == '\n' {
			return string(line), nil
		}
		line = append(line, b[0])
	}
	return "", fmt.Errorf("a line longer than 4096 bytes: %q…", bytes.TrimSpace(line[:64]))
}
