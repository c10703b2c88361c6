package images_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/skiff-containers/skiff/backend/images"
)

// One disk per distinct filesystem, built once: concurrent requests get the same file, and the
// disk of an image is there as soon as its pull returns.
func TestDiskBuiltOnceAndShared(t *testing.T) {
	host, _ := registry(t, nil)
	ctx := ctxT(t)
	s := openStore(t, images.WithPlatform("linux/amd64"))
	img, err := s.Pull(ctx, host+"/busybox:latest", images.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	first := diskOf(t, s, img)
	fi, err := os.Stat(first)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	paths := make([]string, 8)
	errs := make([]error, 8)
	for i := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			paths[i], errs[i] = s.Disk(ctx, img.ID, nil)
		}()
	}
	wg.Wait()
	for i := range paths {
		if errs[i] != nil || paths[i] != first {
			t.Errorf("request %d: %q, %v; want %q", i, paths[i], errs[i], first)
		}
	}
	if fi2, err := os.Stat(first); err != nil || !os.SameFile(fi, fi2) {
		t.Errorf("the disk was rebuilt: %v", err)
	}
	if n := disks(t, s); n != 1 {
		t.Errorf("%d disks, want 1", n)
	}
}

// A disk removed by hand is rebuilt by the next request, concurrent requests sharing one build,
// with progress.
func TestDiskRebuiltConcurrently(t *testing.T) {
	host, _ := registry(t, nil)
	ctx := ctxT(t)
	s := openStore(t, images.WithPlatform("linux/amd64"))
	img, err := s.Pull(ctx, host+"/multilayer:latest", images.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := diskOf(t, s, img)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[string]int{}
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := s.Disk(ctx, img.ID, func(p images.Progress) {
				mu.Lock()
				statuses[p.Status]++
				mu.Unlock()
			})
			if err != nil || got != p {
				t.Errorf("Disk = %q, %v", got, err)
			}
		}()
	}
	wg.Wait()
	if statuses[images.StatusDiskReady] != 4 || statuses[images.StatusBuildingDisk] == 0 {
		t.Errorf("progress %v", statuses)
	}
	checkTree(t, s, img)
}

// A store from before image disks: the image's unpacked directory and owners file are replaced by
// its disk on first use, visibly (a log line), and the image works as before.
func TestUnpackedImageConvertedToDisk(t *testing.T) {
	host, _ := registry(t, nil)
	ctx := ctxT(t)
	dir := filepath.Join(t.TempDir(), "images")
	s, err := images.Open(dir, images.WithPlatform("linux/amd64"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.Pull(ctx, host+"/multilayer:latest", images.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Make it look as the old layout left it: no disk, a rootfs directory and an owners file.
	if err := os.RemoveAll(filepath.Join(dir, "disks")); err != nil {
		t.Fatal(err)
	}
	imgDir := filepath.Join(dir, "images", strings.TrimPrefix(img.ID, "sha256:"))
	if err := os.MkdirAll(filepath.Join(imgDir, "rootfs", "bin"), 0o555); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(imgDir, "owners"), []byte("d 0 0 755 0 0 \"/bin\"\n"), 0o644)
	const unpacked = 3 << 20
	if err := os.WriteFile(filepath.Join(imgDir, "rootfs", "bin", "big"), make([]byte, unpacked), 0o555); err != nil {
		t.Fatal(err)
	}
	log := &logLines{}
	s, err = images.Open(dir, images.WithPlatform("linux/amd64"), images.WithLogger(log.logger()))
	if err != nil {
		t.Fatal(err)
	}
	// Until it is converted, system df counts the unpacked directory: it is on the host.
	du, err := s.DiskUsage(ctx)
	if err != nil || du.Disks != 0 || du.Total < du.BlobsSize+unpacked || du.Total != du.DisksSize+du.BlobsSize+du.UnpackedSize {
		t.Errorf("disk usage of an image from before disks: %+v, %v; want its unpacked %d bytes counted", du, err, unpacked)
	}
	if !log.has("images from before image disks") {
		t.Errorf("Open did not say it found old images: %v", log.lines())
	}
	got, err := s.Get(ctx, img.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkTree(t, s, got)
	for _, p := range []string{"rootfs", "owners"} {
		if _, err := os.Lstat(filepath.Join(imgDir, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there after the conversion: %v", p, err)
		}
	}
	if !log.has("image converted") {
		t.Errorf("the conversion was not logged: %v", log.lines())
	}
	if du, err := s.DiskUsage(ctx); err != nil || du.Disks != 1 || du.UnpackedSize != 0 || du.Total != du.DisksSize+du.BlobsSize {
		t.Errorf("disk usage after the conversion: %+v, %v", du, err)
	}
}

// A layer blob corrupted in the content store fails the disk's build with ErrDigestMismatch and
// leaves no disk.
func TestDiskOfCorruptLayerFails(t *testing.T) {
	host, _ := registry(t, nil)
	ctx := ctxT(t)
	s := openStore(t, images.WithPlatform("linux/amd64"))
	img, err := s.Pull(ctx, host+"/multilayer:latest", images.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(s.Dir(), "disks")); err != nil {
		t.Fatal(err)
	}
	// Swap the last layer's blob for another layer's (valid gzip and tar, wrong content).
	blobs := filepath.Join(s.Dir(), "blobs", "sha256")
	layers := layerBlobs(t, s, img)
	b, err := os.ReadFile(filepath.Join(blobs, layers[0]))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(blobs, layers[len(layers)-1]), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Disk(ctx, img.ID, nil); !errors.Is(err, images.ErrDigestMismatch) {
		t.Fatalf("Disk: %v, want ErrDigestMismatch", err)
	}
	if n := disks(t, s); n != 0 {
		t.Errorf("%d disks after a failed build", n)
	}
	if l := leftovers(t, s); len(l) != 0 {
		t.Errorf("left %v", l)
	}
}

// rmi and prune free the disk when no image needs it; an image sharing the filesystem keeps it.
func TestRemoveFreesDisk(t *testing.T) {
	host, _ := registry(t, nil)
	ctx := ctxT(t)
	s := openStore(t, images.WithPlatform("linux/amd64"))
	bb, err := s.Pull(ctx, host+"/busybox:latest", images.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ml, err := s.Pull(ctx, host+"/multilayer:latest", images.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mlDisk := diskOf(t, s, ml)
	du, err := s.DiskUsage(ctx)
	if err != nil || du.Disks != 2 || du.DisksSize <= 0 || du.Reclaimable != 0 {
		t.Fatalf("disk usage %+v, %v", du, err)
	}
	if err := s.Remove(ctx, ml.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(mlDisk); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("rmi left the image's disk: %v", err)
	}
	if _, err := os.Stat(diskOf(t, s, bb)); err != nil {
		t.Errorf("busybox's disk: %v", err)
	}
	if err := s.Remove(ctx, host+"/busybox:latest", false); err != nil {
		t.Fatal(err)
	}
	if n := disks(t, s); n != 0 {
		t.Errorf("%d disks after removing every image", n)
	}
}

// logLines collects what the store logs.
type logLines struct {
	obs *observer.ObservedLogs
}

func (l *logLines) logger() *zap.Logger {
	core, obs := observer.New(zap.DebugLevel)
	l.obs = obs
	return zap.New(core)
}

func (l *logLines) lines() []string {
	var out []string
	for _, e := range l.obs.All() {
		out = append(out, e.Message)
	}
	return out
}

func (l *logLines) has(s string) bool {
	for _, m := range l.lines() {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

func layerBlobs(t *testing.T, s *images.Store, img *images.Image) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.Dir(), "blobs", "sha256", strings.TrimPrefix(img.Digest, "sha256:")))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, part := range strings.Split(string(b), `"digest":"sha256:`)[2:] { // [1] is the config
		out = append(out, part[:64])
	}
	return out
}
