package images_test

import (
	"debug/elf"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/skiff-containers/skiff/backend/images"
	"github.com/skiff-containers/skiff/internal/testutil"
)

func TestPullByTagAndDigest(t *testing.T) {
	host, reqs := registry(t, nil)
	s := openStore(t, images.WithPlatform("linux/amd64"))
	ctx := ctxT(t)
	var prog progressLog
	img, err := s.Pull(ctx, host+"/busybox", images.PullOptions{Progress: prog.fn})
	if err != nil {
		t.Fatal(err)
	}
	ref := host + "/busybox:latest"
	if img.Platform != "linux/amd64" || !reflect.DeepEqual(img.RepoTags, []string{ref}) {
		t.Errorf("platform %q tags %v, want linux/amd64 [%s]", img.Platform, img.RepoTags, ref)
	}
	if len(img.RepoDigests) != 1 || !strings.HasPrefix(img.RepoDigests[0], host+"/busybox@sha256:") {
		t.Errorf("repo digests %v", img.RepoDigests)
	}
	want := images.ImageConfig{Cmd: []string{"sh"}, Env: []string{testutil.ImagePathEnv},
		Labels: map[string]string{"dev.skiff.test": "busybox", "org.opencontainers.image.title": "busybox"}}
	if !reflect.DeepEqual(img.Config, want) {
		t.Errorf("config %+v, want %+v", img.Config, want)
	}
	if !img.Created.Equal(testutil.FixtureTime) || img.Size < 1<<20 {
		t.Errorf("created %v size %d", img.Created, img.Size)
	}
	checkBusybox(t, s, img, elf.EM_X86_64)

	// Progress: the one layer went through every stage.
	if len(prog.all) == 0 || prog.all[0].Ref != ref {
		t.Fatalf("progress %+v", prog.all)
	}
	got := prog.statuses(prog.all[0].Layer)
	if !reflect.DeepEqual(got, []string{"waiting", "downloading", "verifying", "done"}) {
		t.Errorf("progress statuses %v", got)
	}
	// Then the image's disk is built, its progress reported under the image ID.
	if got := prog.statuses(img.ID); len(got) < 2 || got[0] != images.StatusBuildingDisk || got[len(got)-1] != images.StatusDiskReady {
		t.Errorf("disk progress statuses %v", got)
	}

	// By digest (the index's, then the platform manifest's): the same image, nothing downloaded.
	reqs.reset()
	byIndex, err := s.Pull(ctx, img.RepoDigests[0], images.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	byManifest, err := s.Pull(ctx, host+"/busybox@"+img.Digest, images.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if byIndex.ID != img.ID || byManifest.ID != img.ID || byManifest.Platform != "linux/amd64" {
		t.Errorf("by digest: %s %s, want %s", byIndex.ID, byManifest.ID, img.ID)
	}
	if n := reqs.get("/blobs/"); n != 0 {
		t.Errorf("%d blob requests for a present image: %v", n, reqs.n)
	}
	for _, q := range []string{ref, img.ID, img.ID[7:19], host + "/busybox@" + img.Digest} {
		g, err := s.Get(ctx, q)
		if err != nil || g.ID != img.ID {
			t.Errorf("Get(%q) = %v, %v", q, g, err)
		}
	}
	if _, err := s.Get(ctx, "docker.io/library/busybox:latest"); !errors.Is(err, images.ErrNotFound) {
		t.Errorf("Get of another registry's busybox: %v, want ErrNotFound", err)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != img.ID {
		t.Fatalf("List = %v, %v", list, err)
	}
	if len(list[0].RepoDigests) != 2 {
		t.Errorf("repo digests after pulling by digest: %v", list[0].RepoDigests)
	}

	// A missing tag is ErrNotFound.
	if _, err := s.Pull(ctx, host+"/busybox:nope", images.PullOptions{}); !errors.Is(err, images.ErrNotFound) {
		t.Errorf("pull of a missing tag: %v, want ErrNotFound", err)
	}
}

// checkBusybox checks the disk of a busybox image.
func checkBusybox(t *testing.T, s *images.Store, img *images.Image, machine elf.Machine) {
	t.Helper()
	disk := diskOf(t, s, img)
	bin := filepath.Join(t.TempDir(), "busybox")
	debugfsReq(t, disk, "dump /bin/busybox "+bin)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	if f.Machine != machine {
		t.Errorf("bin/busybox is for %v, want %v", f.Machine, machine)
	}
	f.Close()
	if in := dstat(t, disk, "/bin/sh"); in == nil || in.Target != "busybox" {
		t.Errorf("bin/sh: %+v", in)
	}
	if b := dcat(t, disk, "/etc/passwd"); b != testutil.Passwd {
		t.Errorf("etc/passwd = %q", b)
	}
	if in := dstat(t, disk, "/tmp"); in == nil || in.Mode != 0o1777 {
		t.Errorf("tmp: %+v", in)
	}
	if in := dstat(t, disk, "/home/app"); in == nil || in.Uid != 1000 || in.Gid != 1000 || in.Mtime != testutil.FixtureTime.Unix() {
		t.Errorf("home/app: %+v, want owned by 1000:1000, mtime %v", in, testutil.FixtureTime)
	}
}

func TestPlatforms(t *testing.T) {
	host, _ := registry(t, nil)
	ctx := ctxT(t)
	s := openStore(t, images.WithPlatform("linux/arm64"))
	img, err := s.Pull(ctx, host+"/busybox:latest", images.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img.Platform != "linux/arm64/v8" {
		t.Errorf("platform %q", img.Platform)
	}
	checkBusybox(t, s, img, elf.EM_AARCH64)

	// --platform overrides the store's; the tag now names the amd64 image.
	amd, err := s.Ensure(ctx, host+"/busybox:latest", images.PullOptions{Platform: "linux/amd64"})
	if err != nil {
		t.Fatal(err)
	}
	if amd.Platform != "linux/amd64" || amd.ID == img.ID {
		t.Errorf("amd64 pull: %s %s", amd.Platform, amd.ID)
	}

	_, err = s.Pull(ctx, host+"/busybox:latest", images.PullOptions{Platform: "linux/riscv64"})
	if !errors.Is(err, images.ErrPlatformNotFound) || !strings.Contains(err.Error(), "available: linux/amd64, linux/arm64/v8") {
		t.Errorf("missing platform: %v", err)
	}
	// A single-platform image says what it has.
	_, err = s.Pull(ctx, host+"/multilayer:latest", images.PullOptions{})
	if !errors.Is(err, images.ErrPlatformNotFound) || !strings.Contains(err.Error(), "linux/arm64 requested, available: linux/amd64") {
		t.Errorf("single-platform image: %v", err)
	}
	if _, err := s.Pull(ctx, host+"/busybox", images.PullOptions{Platform: "linux"}); err == nil {
		t.Error("a malformed platform was accepted")
	}
}

func TestPullPolicies(t *testing.T) {
	host, reqs := registry(t, nil)
	ctx := ctxT(t)
	s := openStore(t)
	ref := host + "/busybox:latest"
	if _, err := s.Ensure(ctx, ref, images.PullOptions{Policy: images.PullNever}); !errors.Is(err, images.ErrNotFound) {
		t.Fatalf("never, absent: %v", err)
	}
	if n := reqs.get(""); n != 0 {
		t.Errorf("policy never made %d requests", n)
	}
	img, err := s.Ensure(ctx, ref, images.PullOptions{}) // missing
	if err != nil {
		t.Fatal(err)
	}
	if reqs.get("GET", "/blobs/") == 0 {
		t.Error("policy missing did not download an absent image")
	}
	reqs.reset()
	for _, p := range []images.PullPolicy{images.PullMissing, images.PullNever} {
		got, err := s.Ensure(ctx, ref, images.PullOptions{Policy: p})
		if err != nil || got.ID != img.ID {
			t.Fatalf("%s, present: %v, %v", p, got, err)
		}
	}
	if n := reqs.get(""); n != 0 {
		t.Errorf("policies missing and never made %d requests for a present image", n)
	}
	if _, err := s.Ensure(ctx, ref, images.PullOptions{Policy: images.PullAlways}); err != nil {
		t.Fatal(err)
	}
	if reqs.get("/manifests/") == 0 || reqs.get("/blobs/") != 0 {
		t.Errorf("policy always on a present image: %d manifest, %d blob requests, want >0 and 0",
			reqs.get("/manifests/"), reqs.get("/blobs/"))
	}
	if _, err := s.Ensure(ctx, ref, images.PullOptions{Policy: "sometimes"}); err == nil {
		t.Error("an unknown policy was accepted")
	}
}

func TestNormalizeRef(t *testing.T) {
	const dg = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for in, want := range map[string]string{
		"alpine":                         "docker.io/library/alpine:latest",
		"alpine:3.20":                    "docker.io/library/alpine:3.20",
		"library/alpine":                 "docker.io/library/alpine:latest",
		"docker.io/alpine":               "docker.io/library/alpine:latest",
		"index.docker.io/library/alpine": "docker.io/library/alpine:latest",
		"user/app:v1":                    "docker.io/user/app:v1",
		"ghcr.io/o/r":                    "ghcr.io/o/r:latest",
		"localhost:5000/app":             "localhost:5000/app:latest",
		"127.0.0.1:5000/a/b:c":           "127.0.0.1:5000/a/b:c",
		"alpine@" + dg:                   "docker.io/library/alpine@" + dg,
		"alpine:3@" + dg:                 "docker.io/library/alpine@" + dg,
	} {
		got, err := images.NormalizeRef(in)
		if err != nil || got != want {
			t.Errorf("NormalizeRef(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "UPPER", "a b", "alpine@sha256:12", "a:b:c"} {
		if _, err := images.NormalizeRef(bad); !errors.Is(err, images.ErrInvalidReference) {
			t.Errorf("NormalizeRef(%q): %v, want ErrInvalidReference", bad, err)
		}
	}
}
