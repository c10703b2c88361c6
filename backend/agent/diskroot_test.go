//go:build linux

package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestWaitDisk: the disk is found by its serial, also when it appears
// while waited for; a disk that never appears is an error naming it and the
// serials there are.
func TestWaitDisk(t *testing.T) {
	sys, dev := t.TempDir(), t.TempDir()
	add := func(name, serial string) {
		os.MkdirAll(filepath.Join(sys, name), 0o755)
		os.WriteFile(filepath.Join(sys, name, "serial"), []byte(serial+"\n"), 0o644)
		os.WriteFile(filepath.Join(dev, name), nil, 0o600)
	}
	add("vda", "skiff-upper")
	os.MkdirAll(filepath.Join(sys, "loop0"), 0o755) // no serial
	got, err := waitDisk(sys, dev, "skiff-upper", time.Now())
	if err != nil || got != filepath.Join(dev, "vda") {
		t.Fatalf("waitDisk = %q, %v", got, err)
	}
	go func() { time.Sleep(100 * time.Millisecond); add("vdb", "skiff-image") }()
	if got, err := waitDisk(sys, dev, "skiff-image", time.Now().Add(5*time.Second)); err != nil || got != filepath.Join(dev, "vdb") {
		t.Fatalf("a disk that appears while waited for: %q, %v", got, err)
	}
	_, err = waitDisk(sys, dev, "skiff-other", time.Now().Add(50*time.Millisecond))
	if !errors.Is(err, syscall.ENODEV) || !strings.Contains(err.Error(), `disk "skiff-other" is not attached`) ||
		!strings.Contains(err.Error(), "vda=skiff-upper, vdb=skiff-image") {
		t.Errorf("missing disk: %v", err)
	}
}
