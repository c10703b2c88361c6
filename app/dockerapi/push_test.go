package dockerapi

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
)

func TestDecodeRegistryAuth(t *testing.T) {
	enc := func(s string) string { return base64.URLEncoding.EncodeToString([]byte(s)) }
	for _, h := range []string{"", enc("{}")} {
		if a, err := decodeRegistryAuth(h); a != nil || err != nil {
			t.Errorf("decodeRegistryAuth(%q) = %v, %v; want nil, nil", h, a, err)
		}
	}
	// The CLI's form: base64url, with or without padding, of a registry.AuthConfig.
	js := `{"username":"skiff","password":"s3cr?t>>","serveraddress":"127.0.0.1:5000"}`
	for _, h := range []string{enc(js), strings.TrimRight(enc(js), "=")} {
		a, err := decodeRegistryAuth(h)
		if err != nil || a == nil {
			t.Fatalf("decodeRegistryAuth(%q): %v, %v", h, a, err)
		}
		cfg, err := a.Authorization()
		if err != nil || cfg.Username != "skiff" || cfg.Password != "s3cr?t>>" {
			t.Errorf("decoded %+v, %v", cfg, err)
		}
	}
	if a, _ := decodeRegistryAuth(enc(`{"identitytoken":"tok"}`)); a == nil {
		t.Error("an identity token decoded to no credentials")
	} else if cfg, _ := a.Authorization(); cfg.IdentityToken != "tok" {
		t.Errorf("identity token decoded to %+v", cfg)
	}
	for _, bad := range []string{"%%%", enc("not json")} {
		if _, err := decodeRegistryAuth(bad); !errors.Is(err, errBadRequest) || !strings.Contains(err.Error(), "X-Registry-Auth") {
			t.Errorf("decodeRegistryAuth(%q): %v, want a bad request naming the header", bad, err)
		}
	}
}

// A failed stream ends with Docker's error line: errorDetail for the CLI, and the older "error".
func TestJSONLinesErrorLine(t *testing.T) {
	rec := httptest.NewRecorder()
	newJSONLines(rec).fail(errors.New("An image does not exist locally with the tag: x"))
	var m struct {
		ErrorDetail struct{ Message string } `json:"errorDetail"`
		Error       string                   `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("%q: %v", rec.Body.String(), err)
	}
	want := "An image does not exist locally with the tag: x"
	if m.ErrorDetail.Message != want || m.Error != want {
		t.Errorf("error line %q", rec.Body.String())
	}
}

// POST /auth checks credentials against the registry's /v2/.
func TestLoginChecksRegistry(t *testing.T) {
	reg := ggcrregistry.New()
	open := httptest.NewServer(reg)
	defer open.Close()
	locked := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "skiff" || p != "s3cret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	defer locked.Close()
	api := httptest.NewServer(New(nil, Options{}))
	defer api.Close()
	login := func(body string) (int, string) {
		t.Helper()
		resp, err := http.Post(api.URL+"/auth", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		b, _ := json.Marshal(m)
		return resp.StatusCode, string(b)
	}
	host := func(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }
	cases := []struct {
		body string
		code int
		want string
	}{
		{`{"serveraddress":"` + host(open) + `"}`, 200, "Login Succeeded"},
		{`{"username":"skiff","password":"s3cret","serveraddress":"http://` + host(locked) + `/v1/"}`, 200, "Login Succeeded"},
		{`{"username":"skiff","password":"wrong","serveraddress":"` + host(locked) + `"}`, 401, "login attempt to " + host(locked) + " failed"},
		{`{"serveraddress":"` + host(locked) + `"}`, 401, "401"},
		{`{`, 400, "auth config"},
	}
	for _, c := range cases {
		code, out := login(c.body)
		if code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("POST /auth %s: %d %s; want %d with %q", c.body, code, out, c.code, c.want)
		}
	}
}
