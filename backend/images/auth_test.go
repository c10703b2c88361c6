package images_test

import (
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiff-containers/skiff/backend/images"
)

// Credentials come from the Docker config ($DOCKER_CONFIG/config.json), as `docker login` leaves them.
func TestCredentialsFromDockerConfig(t *testing.T) {
	requireAuth := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); (!ok || u != "skiff" || p != "s3cret") && r.Method == http.MethodGet {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	host, _ := registry(t, requireAuth)
	ctx := ctxT(t)

	empty := t.TempDir()
	t.Setenv("DOCKER_CONFIG", empty)
	_, err := openStore(t).Pull(ctx, host+"/busybox:latest", images.PullOptions{})
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("without credentials: %v, want a 401", err)
	}

	cfg := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("skiff:s3cret"))
	if err := os.WriteFile(filepath.Join(cfg, "config.json"),
		[]byte(`{"auths":{"`+host+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", cfg)
	if _, err := openStore(t).Pull(ctx, host+"/busybox:latest", images.PullOptions{}); err != nil {
		t.Fatalf("with credentials in the Docker config: %v", err)
	}
}
