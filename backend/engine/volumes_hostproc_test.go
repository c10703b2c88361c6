//go:build linux

package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Named and anonymous volumes with real containers (the agent as a host process): the data of a
// shared-folder volume is shared by containers, outlives them, is filled from the image once, and a
// volume in use stays.
func TestVolumesHostproc(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t, 5*time.Minute)
	shared := map[string]string{VolumeOptShared: "true"}
	for _, n := range []string{"bins", "nocopy", "homes"} {
		if _, err := f.e.CreateVolume(ctx, VolumeOptions{Name: n, Options: shared}); err != nil {
			t.Fatal(err)
		}
	}

	v, err := f.e.CreateVolume(ctx, VolumeOptions{Name: "data", Labels: map[string]string{"app": "test"}, Options: shared})
	if err != nil {
		t.Fatal(err)
	}
	if v.Mountpoint != filepath.Join(f.e.Home(), "volumes", "data", "_data") || v.Labels["app"] != "test" || v.Anonymous || !v.Shared {
		t.Fatalf("created %+v", v)
	}
	if again, err := f.e.CreateVolume(ctx, VolumeOptions{Name: "data", Options: shared}); err != nil || !again.CreatedAt.Equal(v.CreatedAt) {
		t.Fatalf("creating an existing volume: %+v, %v (want the same volume)", again, err)
	}
	if _, err := f.e.CreateVolume(ctx, VolumeOptions{Name: "-bad"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad volume name: %v, want ErrInvalid", err)
	}
	if _, err := f.e.CreateVolume(ctx, VolumeOptions{Name: "opt", Options: map[string]string{"type": "nfs"}}); !errors.Is(err, ErrNotSupported) {
		t.Errorf("driver options: %v, want ErrNotSupported", err)
	}

	// Written by one container, read by another; both mount it at once.
	w := f.run(CreateOptions{Mounts: []Mount{{Type: MountVolume, Name: "data", Target: "/data"}}}, `echo kept > /data/f`)
	if code := f.wait(w.ID); code != 0 {
		t.Fatalf("writer exit %d", code)
	}
	r := f.run(CreateOptions{Mounts: []Mount{{Type: MountVolume, Name: "data", Target: "/mnt", ReadOnly: true}}}, `cat /mnt/f`)
	if code := f.wait(r.ID); code != 0 {
		t.Fatalf("reader exit %d", code)
	}
	if out, _ := f.logs(r.ID); out != "kept\n" {
		t.Errorf("reader read %q, want kept", out)
	}
	got, err := f.e.InspectVolume(ctx, "data")
	if err != nil || len(got.UsedBy) != 2 {
		t.Fatalf("inspect: %+v, %v (want two users)", got, err)
	}
	if err := f.e.RemoveVolume(ctx, "data", true); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), w.ShortID()) {
		t.Fatalf("removing a volume in use: %v, want ErrConflict naming %s", err, w.ShortID())
	}
	for _, id := range []string{w.ID, r.ID} {
		if err := f.e.Remove(ctx, id, RemoveOptions{Volumes: true}); err != nil {
			t.Fatal(err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(v.Mountpoint, "f")); err != nil || string(b) != "kept\n" {
		t.Fatalf("a named volume after rm -v of its containers: %q, %v", b, err)
	}

	// A new volume is filled from the image's content at its target when the agent mounts it (at
	// start), keeping modes and symlinks; one with content is not; NoCopy leaves it empty.
	c := f.run(CreateOptions{Mounts: []Mount{{Type: MountVolume, Name: "bins", Target: "/bin", ReadOnly: true}}}, `ls /bin/busybox`)
	if code := f.wait(c.ID); code != 0 {
		t.Fatalf("a container on a filled volume exit %d", code)
	}
	bins, _ := f.e.InspectVolume(ctx, "bins")
	if fi, err := os.Lstat(filepath.Join(bins.Mountpoint, "busybox")); err != nil || fi.Mode().Perm()&0o111 == 0 {
		t.Errorf("the volume was not filled from the image's /bin: %v, %v", fi, err)
	}
	imgBin := filepath.Join(rootOf(t, f.inspect(c.ID)), "bin")
	if want, err := os.Readlink(filepath.Join(imgBin, "sh")); err != nil {
		t.Fatal(err)
	} else if got, err := os.Readlink(filepath.Join(bins.Mountpoint, "sh")); err != nil || got != want {
		t.Errorf("the symlink /bin/sh in the volume: %q, %v, want %q", got, err, want)
	}
	c2, err := f.e.Create(ctx, CreateOptions{Image: f.ref, Mounts: []Mount{{Type: MountVolume, Name: "data", Target: "/bin"}}})
	if err != nil {
		t.Fatal(err)
	}
	// The volume hides the image's shell: the start fails, after the mount.
	if err := f.e.Start(ctx, c2.ID); err == nil {
		f.wait(c2.ID)
	}
	if _, err := os.Lstat(filepath.Join(v.Mountpoint, "busybox")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a volume with content was filled from the image: %v", err)
	}
	c3 := f.run(CreateOptions{Mounts: []Mount{{Type: MountVolume, Name: "nocopy", Target: "/etc", NoCopy: true}}}, `ls /bin/busybox`)
	if code := f.wait(c3.ID); code != 0 {
		t.Fatalf("a container on a nocopy volume exit %d", code)
	}
	nc, _ := f.e.InspectVolume(ctx, "nocopy")
	if ents, err := os.ReadDir(nc.Mountpoint); err != nil || len(ents) != 0 {
		t.Errorf("a nocopy volume: %v, %v, want it empty", ents, err)
	}
	// Owners are kept where the share allows a chown (here: an agent running as root on the host).
	c4 := f.run(CreateOptions{Mounts: []Mount{{Type: MountVolume, Name: "homes", Target: "/home"}}}, `ls -d /home/app`)
	if code := f.wait(c4.ID); code != 0 {
		t.Fatalf("a container on a filled /home exit %d", code)
	}
	homes, _ := f.e.InspectVolume(ctx, "homes")
	if fi, err := os.Lstat(filepath.Join(homes.Mountpoint, "app")); err != nil {
		t.Errorf("the volume was not filled from the image's /home: %v", err)
	} else if st := fi.Sys().(*syscall.Stat_t); os.Geteuid() == 0 && (st.Uid != 1000 || st.Gid != 1000 || fi.Mode().Perm() != 0o755) {
		t.Errorf("/home/app in the volume: %d:%d %v, want 1000:1000 and 0755 as in the image", st.Uid, st.Gid, fi.Mode())
	}
	for _, id := range []string{c.ID, c2.ID, c3.ID, c4.ID} {
		if err := f.e.Remove(ctx, id, RemoveOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"nocopy", "homes"} {
		if err := f.e.RemoveVolume(ctx, n, false); err != nil {
			t.Fatal(err)
		}
	}

	// An anonymous volume (-v /path) goes with its container when removed with Volumes.
	a, err := f.e.Create(ctx, CreateOptions{Image: f.ref, Mounts: []Mount{{Type: MountVolume, Target: "/cache"}}})
	if err != nil {
		t.Fatal(err)
	}
	anon := f.inspect(a.ID).Mounts[0]
	av, err := f.e.InspectVolume(ctx, anon.Name)
	if err != nil || !av.Anonymous || anon.Source != av.Mountpoint || len(anon.Name) != 64 {
		t.Fatalf("anonymous volume %+v of mount %+v: %v", av, anon, err)
	}
	if err := f.e.Remove(ctx, a.ID, RemoveOptions{Volumes: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.e.InspectVolume(ctx, anon.Name); !errors.Is(err, ErrNotFound) {
		t.Errorf("anonymous volume after rm -v: %v, want ErrNotFound", err)
	}

	// Volumes are records on disk: another engine on the data dir sees them.
	if err := f.e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	f.e = f.open(f.e.Hypervisor())
	list, err := f.e.Volumes(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "bins" || list[1].Name != "data" {
		t.Fatalf("volumes after an engine restart: %+v, %v", list, err)
	}
	removed, freed, err := f.e.PruneVolumes(ctx, func(v Volume) bool { return v.Name == "bins" })
	if err != nil || len(removed) != 1 || removed[0] != "bins" || freed == 0 {
		t.Errorf("prune: %v, %d bytes, %v", removed, freed, err)
	}
	if err := f.e.RemoveVolume(context.Background(), "data", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(v.Mountpoint); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a removed volume's content: %v", err)
	}
	if err := f.e.RemoveVolume(ctx, "data", false); !errors.Is(err, ErrNotFound) {
		t.Errorf("removing a missing volume: %v, want ErrNotFound", err)
	}
}
