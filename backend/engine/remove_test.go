//go:build linux

package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// A removal whose deletion fails part way (here a mount point in the rootfs that cannot be
// deleted) has already taken the container out of the listing with one rename: it is gone, never
// listed as half deleted, and the leftover .rm- dir is deleted at the next Open.
func TestRemoveIsAtomic(t *testing.T) {
	home := t.TempDir()
	e, err := Open(context.Background(), Config{Home: home, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	rec := recordOnDisk(t, e, "stuck")
	e.Close(context.Background())

	busy := filepath.Join(rec.RootFS, "busy")
	if err := syscall.Mount("tmpfs", busy, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("mounting a tmpfs (needs root): %v", err)
	}
	mounted := filepath.Join(home, "containers", removingPrefix+rec.ID, "rootfs", "busy")
	t.Cleanup(func() {
		_ = syscall.Unmount(mounted, syscall.MNT_DETACH)
		_ = syscall.Unmount(busy, syscall.MNT_DETACH)
	})

	e, err = Open(context.Background(), Config{Home: home, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := e.Remove(ctx, "stuck", RemoveOptions{}); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if _, err := e.Inspect(ctx, "stuck"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("inspect after remove: %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(e.containerDir(rec.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the container dir is still there after remove: %v", err)
	}
	e.Close(context.Background())

	// The leftover is never loaded, and goes once it can be deleted.
	e, err = Open(ctx, Config{Home: home, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := e.List(ctx, ListOptions{All: true}); len(l) != 0 {
		t.Fatalf("listed after remove: %+v", l)
	}
	e.Close(ctx)
	if err := syscall.Unmount(mounted, 0); err != nil {
		t.Fatal(err)
	}
	e, err = Open(ctx, Config{Home: home, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	ents, _ := os.ReadDir(filepath.Join(home, "containers"))
	if len(ents) != 0 {
		t.Fatalf("containers/ after reopening: %v, want empty", ents)
	}
}

// A .rm- dir holding a complete record (a removal interrupted by a crash right after its rename)
// is not loaded as a container, and is deleted at Open.
func TestRemovingDirNotLoaded(t *testing.T) {
	home := t.TempDir()
	ctx := context.Background()
	e, err := Open(ctx, Config{Home: home, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	rec := recordOnDisk(t, e, "half-gone")
	e.Close(ctx)
	gone := filepath.Join(home, "containers", removingPrefix+rec.ID)
	if err := os.Rename(filepath.Join(home, "containers", rec.ID), gone); err != nil {
		t.Fatal(err)
	}
	e, err = Open(ctx, Config{Home: home, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	if _, err := e.Inspect(ctx, "half-gone"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a container being removed was loaded: %v", err)
	}
	if _, err := os.Stat(gone); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s not deleted at Open: %v", gone, err)
	}
}
