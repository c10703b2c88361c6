//go:build linux

package engine

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/skiff-containers/skiff/internal/testutil"
)

// An image's VOLUME gets an anonymous volume, filled from the image at start, and its HEALTHCHECK is the
// container's unless the create options override parts of it.
func TestImageVolumeAndHealthcheckHostproc(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t, 5*time.Minute)
	imgs := testutil.BusyboxImages(t)
	img := imgs.BusyboxAMD64
	if runtime.GOARCH == "arm64" {
		img = imgs.BusyboxARM64
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config.Volumes = map[string]struct{}{"/bin": {}}
	cf.Config.Healthcheck = &v1.HealthConfig{Test: []string{"CMD", "true"}, Interval: 2 * time.Second, Retries: 7}
	withVol, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	ref := strings.Split(f.ref, "/")[0] + "/withvol:latest"
	if err := testutil.PushImage(ctx, ref, withVol); err != nil {
		t.Fatal(err)
	}
	c, err := f.e.Create(ctx, CreateOptions{Image: ref, Cmd: []string{"true"},
		Healthcheck: &HealthConfig{Interval: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	ms := f.inspect(c.ID).Mounts
	if len(ms) != 1 || ms[0].Type != MountVolume || ms[0].Target != "/bin" || len(ms[0].Name) != 64 {
		t.Fatalf("mounts %+v, want an anonymous volume at /bin", ms)
	}
	// Filled when the agent mounts it: `true` is found in it.
	if err := f.e.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if code := f.wait(c.ID); code != 0 {
		t.Errorf("exit %d on the filled volume", code)
	}
	// A disk volume: hostproc stands in for its disk with a directory beside the image.
	if !ms[0].Disk {
		t.Errorf("the anonymous volume is not a disk volume: %+v", ms[0])
	}
	if _, err := os.Lstat(filepath.Join(filepath.Dir(ms[0].Source), "hostproc-disk", "data", "busybox")); err != nil {
		t.Errorf("the anonymous volume was not filled from the image: %v", err)
	}
	h := f.inspect(c.ID).Process.Health
	if h == nil || h.Test[0] != "CMD" || h.Interval != time.Second || h.Retries != 7 || h.Timeout != defaultHealthTimeout {
		t.Errorf("health check %+v: want the image's with the interval overridden", h)
	}
	// -v over the image's VOLUME path: no anonymous volume.
	c2, err := f.e.Create(ctx, CreateOptions{Image: ref, Cmd: []string{"true"}, Mounts: []Mount{{Type: MountVolume, Name: "mine", Target: "/bin"}}})
	if err != nil {
		t.Fatal(err)
	}
	if ms := f.inspect(c2.ID).Mounts; len(ms) != 1 || ms[0].Name != "mine" {
		t.Errorf("mounts %+v, want only the named volume", ms)
	}
	for _, id := range []string{c.ID, c2.ID} {
		if err := f.e.Remove(context.Background(), id, RemoveOptions{Volumes: true}); err != nil {
			t.Fatal(err)
		}
	}
	vs, _ := f.e.Volumes(ctx)
	if len(vs) != 1 || vs[0].Name != "mine" {
		t.Errorf("volumes after rm -v: %+v, want only the named one", vs)
	}
}
