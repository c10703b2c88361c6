package images_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/skiff-containers/skiff/backend/images"
	"github.com/skiff-containers/skiff/internal/testutil"
)

// fileDigest is the sha256 of a file's bytes.
func fileDigest(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}

func TestSaveLoadRoundTrip(t *testing.T) {
	host, _ := registry(t, nil)
	ctx := ctxT(t)
	src := openStore(t, images.WithPlatform("linux/amd64"))
	var want []*images.Image
	for _, ref := range []string{host + "/busybox:latest", host + "/multilayer:latest"} {
		img, err := src.Pull(ctx, ref, images.PullOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, img)
	}
	for _, format := range []string{images.FormatDocker, images.FormatOCI} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			if err := src.Save(ctx, &buf, []string{want[0].RepoTags[0], want[1].RepoTags[0]}, format); err != nil {
				t.Fatal(err)
			}
			dst := openStore(t, images.WithPlatform("linux/amd64"))
			var prog progressLog
			got, err := dst.Load(ctx, &buf, prog.fn)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || len(prog.all) == 0 {
				t.Fatalf("loaded %d images, %d progress updates", len(got), len(prog.all))
			}
			sort.Slice(got, func(i, j int) bool { return got[i].RepoTags[0] < got[j].RepoTags[0] })
			for i, g := range got {
				w := want[i]
				if g.ID != w.ID || !reflect.DeepEqual(g.RepoTags, w.RepoTags) || g.Platform != w.Platform ||
					!reflect.DeepEqual(g.Config, w.Config) || !g.Created.Equal(w.Created) || g.Size != w.Size {
					t.Errorf("loaded %+v\nwant %+v", g, w)
				}
				// The same layers build the same disk, byte for byte.
				if a, b := fileDigest(t, diskOf(t, src, w)), fileDigest(t, diskOf(t, dst, &g)); a != b {
					t.Errorf("%s: the loaded image's disk differs from the saved one's", g.RepoTags)
				}
			}
			if format == images.FormatOCI {
				checkTree(t, dst, &got[1])
			}
		})
	}

	// Saved by ID: loads without a name.
	var buf bytes.Buffer
	if err := src.Save(ctx, &buf, []string{want[0].ID}, images.FormatDocker); err != nil {
		t.Fatal(err)
	}
	dst := openStore(t)
	got, err := dst.Load(ctx, &buf, nil)
	if err != nil || len(got) != 1 || got[0].ID != want[0].ID || len(got[0].RepoTags) != 0 {
		t.Fatalf("load of an image saved by ID: %+v, %v", got, err)
	}

	if _, err := dst.Load(ctx, strings.NewReader("not a tarball at all"), nil); err == nil {
		t.Error("loading garbage succeeded")
	}
	if err := src.Save(ctx, &buf, []string{"nope:latest"}, images.FormatDocker); !errors.Is(err, images.ErrNotFound) {
		t.Errorf("saving a missing image: %v", err)
	}
	if err := src.Save(ctx, &buf, []string{want[0].ID}, "zip"); err == nil {
		t.Error("an unknown format was accepted")
	}
}

func TestRemoveInUseAndPrune(t *testing.T) {
	host, _ := registry(t, nil)
	ctx := ctxT(t)
	var used string
	s := openStore(t, images.WithInUse(func(id string) bool { return id == used }))
	bb, err := s.Pull(ctx, host+"/busybox:latest", images.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ml, err := s.Pull(ctx, host+"/multilayer:latest", images.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	used = ml.ID
	if err := s.Remove(ctx, host+"/multilayer", false); !errors.Is(err, images.ErrInUse) {
		t.Fatalf("remove in use: %v", err)
	}
	if _, err := s.Get(ctx, ml.ID); err != nil {
		t.Fatalf("a refused remove removed the image: %v", err)
	}
	if err := s.Remove(ctx, host+"/multilayer", true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, ml.ID); !errors.Is(err, images.ErrNotFound) {
		t.Errorf("after forced remove: %v", err)
	}
	if n := disks(t, s); n != 2 {
		t.Errorf("%d disks after a forced remove of an image in use, want 2 (busybox's, and multilayer's while in use)", n)
	}
	used = ""
	if _, err := s.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if n := disks(t, s); n != 1 {
		t.Errorf("%d disks once the removed image is no longer in use, want busybox's", n)
	}
	// The multilayer-only blobs are gone; the busybox layer it shared stays.
	blobs := func() int {
		ents, _ := os.ReadDir(filepath.Join(s.Dir(), "blobs", "sha256"))
		return len(ents)
	}
	if n := blobs(); n != 3 {
		t.Errorf("%d blobs after removing multilayer, want busybox's 3", n)
	}
	if _, err := s.Pull(ctx, host+"/busybox:latest", images.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "nope:latest", false); !errors.Is(err, images.ErrNotFound) {
		t.Errorf("remove of a missing image: %v", err)
	}

	// Prune takes untagged images nobody uses, and nothing else.
	var buf bytes.Buffer
	if err := s.Save(ctx, &buf, []string{bb.ID}, images.FormatDocker); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, bb.ID, false); err != nil {
		t.Fatal(err)
	}
	if n := blobs(); n != 0 {
		t.Errorf("%d blobs left after removing every image", n)
	}
	if _, err := s.Load(ctx, &buf, nil); err != nil { // now untagged
		t.Fatal(err)
	}
	if _, err := s.Pull(ctx, host+"/multilayer:latest", images.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	du, err := s.DiskUsage(ctx)
	if err != nil || du.Images != 2 || du.Reclaimable < bb.Size {
		t.Errorf("disk usage %+v, %v", du, err)
	}
	freed, err := s.Prune(ctx)
	if err != nil || freed < bb.Size {
		t.Errorf("prune freed %d, %v; want at least %d", freed, err, bb.Size)
	}
	list, _ := s.List(ctx)
	if len(list) != 1 || list[0].ID != ml.ID {
		t.Errorf("after prune: %+v", list)
	}
	checkTree(t, s, &list[0])
}

// Removing one of two names only untags; the image goes with its last name.
func TestRemoveUntags(t *testing.T) {
	host, _ := registry(t, nil)
	ctx := ctxT(t)
	if err := testutil.PushIndex(ctx, host+"/busybox:v2", testImages(t).Busybox); err != nil {
		t.Fatal(err)
	}
	s := openStore(t)
	a, err := s.Pull(ctx, host+"/busybox:latest", images.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Pull(ctx, host+"/busybox:v2", images.PullOptions{})
	if err != nil || b.ID != a.ID || len(b.RepoTags) != 2 {
		t.Fatalf("second tag: %+v, %v", b, err)
	}
	if err := s.Remove(ctx, host+"/busybox:latest", false); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, a.ID)
	if err != nil || !reflect.DeepEqual(got.RepoTags, []string{host + "/busybox:v2"}) {
		t.Fatalf("after untagging: %+v, %v", got, err)
	}
	if _, err := s.Get(ctx, host+"/busybox:latest"); !errors.Is(err, images.ErrNotFound) {
		t.Errorf("removed tag still resolves: %v", err)
	}
	if err := s.Remove(ctx, host+"/busybox:v2", false); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.List(ctx); len(list) != 0 {
		t.Errorf("after removing the last tag: %+v", list)
	}
}

// A `docker save` archive as Docker writes it: uncompressed layer.tar files and manifest.json.
func TestLoadDockerSaveWithUncompressedLayers(t *testing.T) {
	var lb testutil.TarBuilder
	lb.Dir("etc", 0o755)
	lb.File("etc/hello", 0o644, []byte("hello from docker save\n"))
	lb.Symlink("hello", "etc/hello")
	layer, err := lb.Tar()
	if err != nil {
		t.Fatal(err)
	}
	diffID := fmt.Sprintf("sha256:%x", sha256.Sum256(layer))
	config := []byte(`{"architecture":"amd64","os":"linux","created":"2024-01-02T03:04:05Z",` +
		`"config":{"Cmd":["cat","/hello"],"Env":["A=1"],"ExposedPorts":{"80":{}}},` +
		`"rootfs":{"type":"layers","diff_ids":["` + diffID + `"]}}`)
	configName := fmt.Sprintf("%x.json", sha256.Sum256(config))
	manifest := []byte(`[{"Config":"` + configName + `","RepoTags":["example/saved:1"],"Layers":["0123abcd/layer.tar"]}]`)
	var archive testutil.TarBuilder
	archive.File(configName, 0o644, config)
	archive.Dir("0123abcd", 0o755)
	archive.File("0123abcd/layer.tar", 0o644, layer)
	archive.File("manifest.json", 0o644, manifest)
	raw, err := archive.Tar()
	if err != nil {
		t.Fatal(err)
	}
	s := openStore(t, images.WithPlatform("linux/amd64"))
	got, err := s.Load(ctxT(t), bytes.NewReader(raw), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != "sha256:"+strings.TrimSuffix(configName, ".json") ||
		!reflect.DeepEqual(got[0].RepoTags, []string{"docker.io/example/saved:1"}) ||
		!reflect.DeepEqual(got[0].Config.ExposedPorts, []string{"80/tcp"}) {
		t.Fatalf("loaded %+v", got)
	}
	if b := dcat(t, diskOf(t, s, &got[0]), "/etc/hello"); b != "hello from docker save\n" {
		t.Errorf("hello = %q", b)
	}
	img, err := s.Get(ctxT(t), "example/saved:1")
	if err != nil || img.ID != got[0].ID {
		t.Errorf("Get by the loaded tag: %v, %v", img, err)
	}
}

// When a tag moves to a new image, the old one keeps only its repo digest: dangling, pruned.
func TestMovedTagLeavesADanglingImage(t *testing.T) {
	host, _ := registry(t, nil)
	ctx := ctxT(t)
	s := openStore(t)
	old, err := s.Pull(ctx, host+"/multilayer:latest", images.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := testutil.PushImage(ctx, host+"/multilayer:latest", testImages(t).BusyboxAMD64); err != nil {
		t.Fatal(err)
	}
	cur, err := s.Pull(ctx, host+"/multilayer:latest", images.PullOptions{})
	if err != nil || cur.ID == old.ID {
		t.Fatalf("re-pull after the tag moved: %+v, %v", cur, err)
	}
	if g, err := s.Get(ctx, old.ID); err != nil || len(g.RepoTags) != 0 || len(g.RepoDigests) != 1 {
		t.Fatalf("old image: %+v, %v", g, err)
	}
	if _, err := s.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, old.ID); !errors.Is(err, images.ErrNotFound) {
		t.Errorf("dangling image survived prune: %v", err)
	}
	if g, err := s.Get(ctx, host+"/multilayer:latest"); err != nil || g.ID != cur.ID {
		t.Errorf("current image after prune: %+v, %v", g, err)
	}
}
