//go:build linux

package engine

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/internal/testutil"
)

// A container's root is the image's disk (shared, read-only) under a writable disk of its own: an
// empty, sparse ext4 of the default size or of --storage-opt size; start attaches both with the
// disk root; rm removes the writable disk and leaves the image's.
func TestCreateMakesWritableDiskHostproc(t *testing.T) {
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
func TestCreateBadStorageSizeHostproc(t *testing.T) {
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

// cpAll reads a CopyFrom archive into name → content (directories "/").
func cpAll(t *testing.T, rc io.ReadCloser) map[string]string {
	t.Helper()
	defer rc.Close()
	out := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[hdr.Name] = string(b)
	}
}

// docker cp on a container whose root is on disks goes through its agent: a stopped container's
// through a short-lived VM of its disks (which ends with the copy and lets the container start),
// a running container's through its own. Errors keep their meaning (ErrNotFound, ErrInvalid).
func TestCopyDiskRootThroughAgentHostproc(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t, 2*time.Minute)
	c, err := f.e.Create(ctx, CreateOptions{Image: f.ref, Cmd: []string{"sh", "-c", "cat /tmp/in/f.txt; sleep 600"}})
	if err != nil {
		t.Fatal(err)
	}
	// Stopped.
	if err := f.e.CopyTo(ctx, c.ID, "/tmp", tarOf(t,
		entry{name: "in/", typ: tar.TypeDir, mode: 0o750},
		entry{name: "in/f.txt", typ: tar.TypeReg, body: "copied in\n", mode: 0o4755},
	), CopyToOptions{}); err != nil {
		t.Fatalf("CopyTo a stopped container: %v", err)
	}
	st, err := f.e.StatPath(ctx, c.ID, "/tmp/in/f.txt")
	if err != nil || st.Name != "f.txt" || st.Size != 10 || st.Mode.Perm() != 0o755 || st.Mode&os.ModeSetuid == 0 {
		t.Errorf("StatPath = %+v, %v", st, err)
	}
	if st, err := f.e.StatPath(ctx, c.ID, "/bin/sh"); err != nil || st.LinkTarget != "/bin/busybox" {
		t.Errorf("StatPath(/bin/sh) = %+v, %v", st, err)
	}
	rc, st, err := f.e.CopyFrom(ctx, c.ID, "/tmp/in")
	if err != nil || !st.Mode.IsDir() {
		t.Fatalf("CopyFrom = %+v, %v", st, err)
	}
	if got := cpAll(t, rc); got["in/f.txt"] != "copied in\n" || len(got) != 2 {
		t.Errorf("CopyFrom a stopped container: %v", got)
	}
	if _, err := f.e.StatPath(ctx, c.ID, "/nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("StatPath of a missing path: %v, want ErrNotFound", err)
	}
	if err := f.e.CopyTo(ctx, c.ID, "/tmp/in/f.txt", tarOf(t), CopyToOptions{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("CopyTo into a file: %v, want ErrInvalid", err)
	}
	if err := f.e.CopyTo(ctx, c.ID, "/tmp", tarOf(t, entry{name: "../x", typ: tar.TypeReg, body: "x"}), CopyToOptions{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("CopyTo of an entry leaving the directory: %v, want ErrInvalid", err)
	}

	// Running: the workload sees what was copied in while it was stopped.
	if err := f.e.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	waitLog(t, f, c.ID, "copied in")
	if err := f.e.CopyTo(ctx, c.ID, "/tmp/in", tarOf(t, entry{name: "g.txt", typ: tar.TypeReg, body: "live\n"}), CopyToOptions{}); err != nil {
		t.Fatalf("CopyTo a running container: %v", err)
	}
	rc, _, err = f.e.CopyFrom(ctx, c.ID, "/tmp/in/")
	if err != nil {
		t.Fatal(err)
	}
	if got := cpAll(t, rc); got["in/g.txt"] != "live\n" || got["in/f.txt"] != "copied in\n" {
		t.Errorf("CopyFrom a running container: %v", got)
	}
	zero := time.Duration(0)
	if err := f.e.Stop(ctx, c.ID, &zero); err != nil {
		t.Fatal(err)
	}
}

// A container created before disks (a record with a root directory, no disks) keeps its root: it
// starts with that directory as its root share, its files (its writes included) as they were, and
// cp reads it on the host.
func TestContainerFromBeforeDisksKeepsItsRootHostproc(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t, 2*time.Minute)
	rec := Container{ID: NewID(), Name: "old", State: StateExited, Created: time.Now().UTC(), Image: f.ref,
		Config:  CreateOptions{Image: f.ref, Restart: RestartPolicy{Name: "no"}},
		Process: Process{Args: []string{"cat", "/data/written"}, Env: []string{"PATH=" + DefaultPath}, WorkingDir: "/", Hostname: "old"},
	}
	rec.RootFS = filepath.Join(f.e.containerDir(rec.ID), "rootfs")
	rec.LogPath = filepath.Join(f.e.logDir(rec.ID), logFileName)
	if err := testutil.WriteBusyboxRootfs(rec.RootFS); err != nil {
		t.Skipf("busybox rootfs: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(rec.RootFS, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rec.RootFS, "data", "written"), []byte("kept from before\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(f.e.logDir(rec.ID), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := f.e.saveRecord(&rec); err != nil {
		t.Fatal(err)
	}
	// The engine finds it when it opens, as after an upgrade.
	if err := f.e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	f.e = f.open(testHypervisor(t))
	ct, err := f.e.lookup(rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := ct.machineSpec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(spec.Disks) != 0 || spec.Boot.Root == agentproto.RootFromDisks || len(spec.Shares) == 0 ||
		spec.Shares[0].Tag != vm.RootShareTag || spec.Shares[0].HostPath != rec.RootFS {
		t.Fatalf("machine spec of an old container: root %q, disks %+v, shares %+v", spec.Boot.Root, spec.Disks, spec.Shares)
	}
	if err := f.e.Start(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	if code := f.wait(rec.ID); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if out, _ := f.logs(rec.ID); out != "kept from before\n" {
		t.Errorf("output %q", out)
	}
	if st, err := f.e.StatPath(ctx, rec.ID, "/data/written"); err != nil || st.Size != 17 {
		t.Errorf("StatPath: %+v, %v", st, err)
	}
}
