package images_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/skiff-containers/skiff/backend/images"
)

func TestTag(t *testing.T) {
	host, _ := registry(t, nil)
	ctx := ctxT(t)
	s := openStore(t)
	a, err := s.Pull(ctx, host+"/busybox:latest", images.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(ctx, host+"/busybox:latest", "myapp:v1"); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "myapp:v1")
	if err != nil || got.ID != a.ID {
		t.Fatalf("the new tag resolves to %+v, %v; want %s", got, err, a.ID)
	}
	want := []string{host + "/busybox:latest", "docker.io/library/myapp:v1"} // sorted
	if !reflect.DeepEqual(got.RepoTags, want) {
		t.Errorf("RepoTags %v, want %v", got.RepoTags, want)
	}
	if err := s.Tag(ctx, a.ID[:12+len("sha256:")], "myapp:v2"); err != nil {
		t.Errorf("tag by ID prefix: %v", err)
	}
	if err := s.Tag(ctx, "nosuch:latest", "x:y"); !errors.Is(err, images.ErrNotFound) {
		t.Errorf("tag of an absent image: %v, want ErrNotFound", err)
	}
	if err := s.Tag(ctx, a.ID, "x@sha256:"+a.ID[7:]); !errors.Is(err, images.ErrInvalidReference) {
		t.Errorf("tag with a digest: %v, want ErrInvalidReference", err)
	}
	if err := s.Tag(ctx, a.ID, "Bad Name"); !errors.Is(err, images.ErrInvalidReference) {
		t.Errorf("tag with a bad name: %v, want ErrInvalidReference", err)
	}
	// Removing the first name leaves the image under the new ones.
	if err := s.Remove(ctx, host+"/busybox:latest", false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "myapp:v1"); err != nil {
		t.Errorf("after untagging the original name: %v", err)
	}
}
