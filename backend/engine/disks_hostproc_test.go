//go:build linux

package engine

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
)

// A container's root is the image's disk (shared, read-only) under a writable disk of its own: an
// empty, sparse ext4 of the default size or of --storage-opt size; start attaches both with the
// disk root; rm removes the writable disk and leaves the image's.
func TestCreateMakesWritableDisk(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t, 2*time.Minute)
	a, err := f.e.Create(ctx, CreateOptions{Image: f.ref, Cmd: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.e.Create(ctx, CreateOptions{Image: f.ref, Cmd: []string{"true"}, StorageSize: 3 << 30})
	if err != nil {
		t.Fatal(err)
	}
	if a.ImageDisk == "" || a.ImageDisk != b.ImageDisk || a.RootFS != "" {
		t.Fatalf("image disks %q and %q (rootfs %q): want one, shared", a.ImageDisk, b.ImageDisk, a.RootFS)
	}
	for _, c := range []struct {
		ctr  *Container
		size int64
	}{{a, DefaultStorageSize}, {b, 3 << 30}} {
		fi, err := os.Stat(c.ctr.UpperDisk)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != c.size {
			t.Errorf("writable disk of %d bytes, want %d", fi.Size(), c.size)
		}
		if used := fi.Sys().(*syscall.Stat_t).Blocks * 512; used > 4<<20 {
			t.Errorf("the empty writable disk takes %d bytes on the host", used)
		}
		if out, err := exec.Command(e2tool("e2fsck"), "-fn", c.ctr.UpperDisk).CombinedOutput(); err != nil {
			t.Errorf("e2fsck: %v\n%s", err, out)
		}
		ct, err := f.e.lookup(c.ctr.ID)
		if err != nil {
			t.Fatal(err)
		}
		spec, err := ct.machineSpec(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []vm.Disk{{ID: agentproto.ImageDiskID, Path: a.ImageDisk, ReadOnly: true}, {ID: agentproto.UpperDiskID, Path: c.ctr.UpperDisk}}
		if spec.Boot.Root != agentproto.RootFromDisks || len(spec.Disks) != 2 || spec.Disks[0] != want[0] || spec.Disks[1] != want[1] {
			t.Errorf("machine spec root %q disks %+v, want %+v", spec.Boot.Root, spec.Disks, want)
		}
		for _, sh := range spec.Shares {
			if sh.Tag == vm.RootShareTag {
				t.Errorf("a disk-rooted container also shares a root directory: %+v", sh)
			}
		}
	}
	if err := f.e.Remove(ctx, a.ID, RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(a.UpperDisk); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("rm left the writable disk: %v", err)
	}
	if _, err := os.Stat(a.ImageDisk); err != nil {
		t.Errorf("rm removed the image's disk: %v", err)
	}
}

// A bad size is refused before anything is made.
func TestCreateBadStorageSize(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t, 2*time.Minute)
	for _, size := range []int64{1 << 20, -1, 5 << 40} {
		_, err := f.e.Create(ctx, CreateOptions{Image: f.ref, Cmd: []string{"true"}, StorageSize: size})
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "storage size") {
			t.Errorf("size %d: %v, want ErrInvalid naming the storage size", size, err)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(f.home, "engine", "containers"))
	if len(ents) != 0 {
		t.Errorf("a refused create left %v", ents)
	}
}

func TestParseStorageOpt(t *testing.T) {
	for in, want := range map[string]int64{"size=20G": 20 << 30, "size=512m": 512 << 20, "size=1.5g": 3 << 29, "size=2147483648": 2 << 30} {
		if got, err := ParseStorageOpt([]string{in}); err != nil || got != want {
			t.Errorf("%s: %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"size=1m", "size=", "inodes=10", "size=ten", "size=5t"} {
		if _, err := ParseStorageOpt([]string{in}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", in, err)
		}
	}
}
