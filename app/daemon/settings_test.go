package daemon

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/skiff-containers/skiff/backend/engine"
)

// A registry that asks for a password: a wrong one is refused and nothing kept; the right one is
// kept (0600) and given back by the keychain for that registry only, and after a reopen.
func TestRegistryLoginKeychain(t *testing.T) {
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "me" || p != "right" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	home := t.TempDir()
	s, err := openSettings(home, []string{"/x"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.login(ctx, host, "me", "wrong"); !errors.Is(err, engine.ErrInvalid) || !strings.Contains(err.Error(), "refused the username or password") {
		t.Errorf("a wrong password: %v", err)
	}
	if _, err := os.Stat(filepath.Join(home, registriesFile)); !os.IsNotExist(err) {
		t.Errorf("a refused login wrote the credentials file: %v", err)
	}
	if err := s.login(ctx, host, "me", "right"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(home, registriesFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("credentials file: %v %v", fi, err)
	}
	again, err := openSettings(home, nil)
	if err != nil {
		t.Fatal(err)
	}
	resolve := func(registry string) authn.AuthConfig {
		t.Helper()
		r, err := name.NewRegistry(registry)
		if err != nil {
			t.Fatal(err)
		}
		a, err := authn.NewMultiKeychain(again, authn.DefaultKeychain).Resolve(r)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := a.Authorization()
		if err != nil {
			t.Fatal(err)
		}
		return *cfg
	}
	if got := resolve(host); got.Username != "me" || got.Password != "right" {
		t.Errorf("the keychain for %s: %+v", host, got)
	}
	if got := resolve("127.0.0.1:1"); got.Username == "me" {
		t.Errorf("another registry got the credentials: %+v", got)
	}
	if err := again.logout(host); err != nil {
		t.Fatal(err)
	}
	if got := resolve(host); got.Username == "me" {
		t.Errorf("after logout: %+v", got)
	}
}
