package images_test

import (
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/skiff-containers/skiff/backend/images"
)

// Push uploads a stored image with explicit credentials; pull takes them too; a missing image or
// missing credentials fail with a clear error.
func TestPushWithExplicitAuth(t *testing.T) {
	var locked atomic.Bool // the fixture images go in without credentials
	requireAuth := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); locked.Load() && (!ok || u != "skiff" || p != "s3cret") {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	host, _ := registry(t, requireAuth)
	locked.Store(true)
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no keychain credentials
	ctx := ctxT(t)
	auth := authn.FromConfig(authn.AuthConfig{Username: "skiff", Password: "s3cret"})
	s := openStore(t)
	src, err := s.Pull(ctx, host+"/busybox:latest", images.PullOptions{Auth: auth})
	if err != nil {
		t.Fatalf("pull with explicit auth: %v", err)
	}
	if err := s.Tag(ctx, host+"/busybox:latest", host+"/pushed:1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Push(ctx, host+"/pushed:1", images.PushOptions{}); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("push without credentials: %v, want a 401", err)
	}
	var last images.Progress
	res, err := s.Push(ctx, host+"/pushed:1", images.PushOptions{Auth: auth, Progress: func(p images.Progress) { last = p }})
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	if res.Digest != src.Digest || res.Size <= 0 || last.Total <= 0 || last.Done != last.Total {
		t.Errorf("push result %+v (pulled digest %s), last progress %+v", res, src.Digest, last)
	}
	back, err := openStore(t).Pull(ctx, host+"/pushed:1", images.PullOptions{Auth: auth})
	if err != nil {
		t.Fatalf("pull of the pushed image: %v", err)
	}
	if back.ID != src.ID {
		t.Errorf("pulled back %s, pushed %s", back.ID, src.ID)
	}
	if _, err := s.Push(ctx, host+"/missing:1", images.PushOptions{Auth: auth}); !errors.Is(err, images.ErrNotFound) {
		t.Errorf("push of a missing image: %v, want ErrNotFound", err)
	}
}
