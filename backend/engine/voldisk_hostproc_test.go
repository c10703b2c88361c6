//go:build linux

package engine

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Disk volumes, engine side (the agent as a host process stands in for the disk with a directory):
// a sparse ext4 image of the size asked, the options checked, one running writer, several readers
// while none writes, the message that says how to share, and rm deleting the image.
func TestDiskVolumesHostproc(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t, 5*time.Minute)

	for _, o := range []struct {
		opts map[string]string
		want error
	}{
		{map[string]string{"size": "1k"}, ErrInvalid},
		{map[string]string{"size": "lots"}, ErrInvalid},
		{map[string]string{"shared": "maybe"}, ErrInvalid},
		{map[string]string{"shared": "true", "size": "1G"}, ErrInvalid},
		{map[string]string{"o": "size=1G"}, ErrNotSupported},
	} {
		if _, err := f.e.CreateVolume(ctx, VolumeOptions{Name: "bad", Options: o.opts}); !errors.Is(err, o.want) {
			t.Errorf("volume options %v: %v, want %v", o.opts, err, o.want)
		}
	}
	if _, err := os.Stat(filepath.Join(f.e.Home(), "volumes", "bad")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused volume left %v", err)
	}

	v, err := f.e.CreateVolume(ctx, VolumeOptions{Name: "db", Options: map[string]string{"size": "512m"}})
	if err != nil {
		t.Fatal(err)
	}
	if v.Shared || v.Size != 512<<20 || v.Options["size"] != "512m" || v.Mountpoint != filepath.Join(f.e.Home(), "volumes", "db", "volume.ext4") {
		t.Fatalf("created %+v", v)
	}
	fi, err := os.Stat(v.Mountpoint)
	if err != nil || fi.Size() != 512<<20 {
		t.Fatalf("the volume's image: %v, %v", fi, err)
	}
	used, err := f.e.VolumeSize(ctx, "db")
	if err != nil || used <= 0 || used >= 64<<20 {
		t.Errorf("VolumeSize of a new 512 MiB volume: %d, %v (want the few blocks in use)", used, err)
	}
	if dv, err := f.e.CreateVolume(ctx, VolumeOptions{Name: "dflt"}); err != nil || dv.Size != DefaultVolumeSize || dv.Options["size"] != "32G" {
		t.Errorf("a volume of the default size: %+v, %v", dv, err)
	}

	// One running container writes it; another is refused, naming the volume and the holder.
	w := f.run(CreateOptions{Name: "holder", Mounts: []Mount{{Type: MountVolume, Name: "db", Target: "/data"}}}, `echo kept > /data/f; sleep 600`)
	if !f.inspect(w.ID).Mounts[0].Disk {
		t.Errorf("the mount of a disk volume is not marked Disk: %+v", f.inspect(w.ID).Mounts[0])
	}
	for _, ro := range []bool{false, true} {
		c, err := f.e.Create(ctx, CreateOptions{Image: f.ref, Cmd: []string{"true"}, Mounts: []Mount{{Type: MountVolume, Name: "db", Target: "/d", ReadOnly: ro}}})
		if err != nil {
			t.Fatal(err)
		}
		err = f.e.Start(ctx, c.ID)
		if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), `volume "db"`) || !strings.Contains(err.Error(), "holder") ||
			!strings.Contains(err.Error(), "shared=true") {
			t.Errorf("a second running container (read-only %v): %v, want ErrConflict naming db and holder", ro, err)
		}
		if err := f.e.Remove(ctx, c.ID, RemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.e.Remove(ctx, w.ID, RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}

	// Readers share it while none writes; a writer is refused meanwhile.
	r1 := f.run(CreateOptions{Name: "r1", Mounts: []Mount{{Type: MountVolume, Name: "db", Target: "/d", ReadOnly: true}}}, `sleep 600`)
	r2 := f.run(CreateOptions{Name: "r2", Mounts: []Mount{{Type: MountVolume, Name: "db", Target: "/d", ReadOnly: true}}}, `cat /d/f`)
	if code := f.wait(r2.ID); code != 0 {
		t.Fatalf("a second reader exit %d", code)
	}
	if out, _ := f.logs(r2.ID); out != "kept\n" {
		t.Errorf("the second reader read %q", out)
	}
	wr, err := f.e.Create(ctx, CreateOptions{Image: f.ref, Cmd: []string{"true"}, Mounts: []Mount{{Type: MountVolume, Name: "db", Target: "/d"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.e.Start(ctx, wr.ID); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "r1") {
		t.Errorf("a writer while a reader runs: %v", err)
	}
	for _, id := range []string{r1.ID, r2.ID, wr.ID} {
		if err := f.e.Remove(ctx, id, RemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
	}
	// Once they are gone, a writer runs.
	w2 := f.run(CreateOptions{Mounts: []Mount{{Type: MountVolume, Name: "db", Target: "/d"}}}, `cat /d/f`)
	if code := f.wait(w2.ID); code != 0 {
		t.Fatalf("a writer after the readers exit %d", code)
	}
	if err := f.e.Remove(ctx, w2.ID, RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := f.e.RemoveVolume(ctx, "db", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(v.Mountpoint); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the image of a removed volume: %v", err)
	}
}
