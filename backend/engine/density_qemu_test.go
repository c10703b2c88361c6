//go:build linux

package engine

import (
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
)

// TestUpperDiskReadsLittle: a container's upper disk (an empty 32 GiB ext4) and a disk volume of
// the default size are mounted without ext4's prefetch of every block group's bitmap, which read
// ~1.2 MB from each and left ~2.5 MB of page cache in each restored guest (host memory of its
// own): the guest has read under 512 KiB from each a few seconds after the start.
func TestUpperDiskReadsLittle(t *testing.T) {
	e, host, _ := qemuEngine(t)
	ctx := ctxT(t, 5*time.Minute)
	if _, err := e.CreateVolume(ctx, VolumeOptions{Name: "big"}); err != nil {
		t.Fatal(err)
	}
	c, err := e.Create(ctx, CreateOptions{Image: host + "/busybox:latest", Cmd: []string{"sleep", "1000"},
		Mounts: []Mount{{Type: MountVolume, Name: "big", Target: "/data"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Remove(ctx, c.ID, RemoveOptions{Force: true}) })
	time.Sleep(5 * time.Second) // the prefetch ran in ext4's lazy-init thread just after the mount
	// Each virtio disk's serial and sectors read (/sys/block/vdX/stat's third field).
	s, err := e.Exec(ctx, c.ID, ExecOptions{Cmd: []string{"sh", "-c",
		`for d in /sys/block/vd*; do echo $(cat $d/serial) $(cat $d/stat); done`}})
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, s.Stderr)
	out, _ := io.ReadAll(s.Stdout)
	if code, err := s.Wait(); err != nil || code != 0 {
		t.Fatalf("exec: %d %v %q", code, err, out)
	}
	disks := 0
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 4 || f[0] == agentproto.ImageDiskID {
			continue
		}
		disks++
		sectors, _ := strconv.Atoi(f[3])
		t.Logf("disk %s: %d KiB read", f[0], sectors/2)
		if sectors >= 1024 {
			t.Errorf("the guest read %d KiB from the empty disk %s, want < 512 KiB", sectors/2, f[0])
		}
	}
	if disks != 2 || !strings.Contains(string(out), agentproto.UpperDiskID) {
		t.Fatalf("want the upper disk and the volume's in the guest:\n%s", out)
	}
}

// TestDiskQueuesLean: each of a container's virtio disks has one request queue of 64 requests
// (vm's leanDevices on the command line, passed by the agent to virtio_blk when it is a module),
// not one per vCPU of the virtqueue's 256: a restored guest's disks are hot-plugged after the
// restore, so their request arrays are pages each VM writes for itself.
func TestDiskQueuesLean(t *testing.T) {
	e, host, _ := qemuEngine(t)
	ctx := ctxT(t, 5*time.Minute)
	c, err := e.Create(ctx, CreateOptions{Image: host + "/busybox:latest", Cmd: []string{"sleep", "1000"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Remove(ctx, c.ID, RemoveOptions{Force: true}) })
	// Each virtio disk's serial, number of hardware queues and the first one's depth.
	s, err := e.Exec(ctx, c.ID, ExecOptions{Cmd: []string{"sh", "-c",
		`for d in /sys/block/vd*; do echo $(cat $d/serial) $(ls $d/mq | wc -l) $(cat $d/mq/0/nr_tags); done`}})
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, s.Stderr)
	out, _ := io.ReadAll(s.Stdout)
	if code, err := s.Wait(); err != nil || code != 0 {
		t.Fatalf("exec: %d %v %q", code, err, out)
	}
	disks := 0
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 {
			t.Fatalf("a line %q in:\n%s", l, out)
		}
		disks++
		if f[1] != "1" || f[2] != "64" {
			t.Errorf("disk %s: %s request queues of %s requests, want 1 of 64", f[0], f[1], f[2])
		}
	}
	if disks != 2 {
		t.Fatalf("want the image and upper disks in the guest:\n%s", out)
	}
}
