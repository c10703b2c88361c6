package dockerapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/system"
)

// The router needs no engine for these endpoints.
func TestRouterVersionsPingAndNotImplemented(t *testing.T) {
	ts := httptest.NewServer(New(nil, Options{Version: "9.9"}))
	defer ts.Close()
	get := func(method, path string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, ts.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for _, m := range []string{"GET", "HEAD"} {
		resp, body := get(m, "/_ping")
		if resp.StatusCode != 200 || resp.Header.Get("API-Version") != "1.50" || resp.Header.Get("Ostype") != "linux" ||
			resp.Header.Get("Docker-Experimental") != "false" || !strings.HasPrefix(resp.Header.Get("Server"), "Skiff/9.9") {
			t.Errorf("%s /_ping: %d %v", m, resp.StatusCode, resp.Header)
		}
		if want := map[string]string{"GET": "OK", "HEAD": ""}[m]; body != want {
			t.Errorf("%s /_ping body %q, want %q", m, body, want)
		}
	}
	for _, p := range []string{"/version", "/v1.41/version", "/v1.50/version"} {
		resp, body := get("GET", p)
		var v system.VersionResponse
		if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &v) != nil || v.APIVersion != "1.50" ||
			v.MinAPIVersion != "1.41" || v.Version != "9.9" || v.Os != "linux" {
			t.Errorf("GET %s: %d %s", p, resp.StatusCode, body)
		}
	}
	for p, want := range map[string]string{
		"/v1.51/version": "client version 1.51 is too new. Maximum supported API version is 1.50",
		"/v1.40/version": "client version 1.40 is too old",
		"/v2.0/version":  `invalid API version`,
	} {
		resp, body := get("GET", p)
		if resp.StatusCode != 400 || !strings.Contains(body, want) || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("GET %s: %d %s, want 400 with %q", p, resp.StatusCode, body, want)
		}
	}
	for _, p := range []string{"/v1.50/system/df", "/networks/bridge/connect", "/v1.45/containers/x/export", "/images/busybox/history", "/swarm"} {
		resp, body := get("GET", p)
		var e struct{ Message string }
		json.Unmarshal([]byte(body), &e)
		path := p
		if strings.HasPrefix(p, "/v1.") {
			path = p[strings.Index(p[1:], "/")+1:]
		}
		if resp.StatusCode != 501 || !strings.Contains(e.Message, "GET "+path) {
			t.Errorf("GET %s: %d %s, want 501 naming GET %s", p, resp.StatusCode, body, path)
		}
	}
}

func TestParseFilters(t *testing.T) {
	for _, js := range []string{`{"name":{"web":true},"label":{"a=b":true}}`, `{"name":["web"],"label":["a=b"]}`} {
		f, err := parseFilters(js)
		if err != nil || len(f["name"]) != 1 || f["name"][0] != "web" || f["label"][0] != "a=b" {
			t.Errorf("parseFilters(%s) = %v, %v", js, f, err)
		}
	}
	if _, err := parseFilters(`{"name":"web"}`); err == nil {
		t.Error("a malformed filter was accepted")
	}
	f, _ := parseFilters(`{"label":{"a":true,"b=2":true}}`)
	if !f.labels(map[string]string{"a": "x", "b": "2"}) || f.labels(map[string]string{"a": "x", "b": "3"}) || f.labels(nil) {
		t.Error("label filters match wrongly")
	}
}

func TestStreamWriterFraming(t *testing.T) {
	var b strings.Builder
	sw := &streamWriter{w: &b}
	sw.write(streamStderr, []byte("err\n"))
	sw.write(streamStdout, []byte("hi"))
	want := "\x02\x00\x00\x00\x00\x00\x00\x04err\n\x01\x00\x00\x00\x00\x00\x00\x02hi"
	if b.String() != want {
		t.Errorf("frames %q, want %q", b.String(), want)
	}
	b.Reset()
	raw := &streamWriter{w: &b, raw: true}
	raw.write(streamStdout, []byte("tty"))
	if b.String() != "tty" {
		t.Errorf("raw %q", b.String())
	}
}

// No plugins: an empty list, 404 for any name (what Testcontainers' Terminate asks for).
func TestPluginsAnswerNone(t *testing.T) {
	ts := httptest.NewServer(New(nil, Options{}))
	defer ts.Close()
	do := func(method, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, ts.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := do("GET", "/v1.50/plugins/abc/json"); code != 404 || !strings.Contains(body, `plugin \"abc\" not found`) {
		t.Errorf("GET /plugins/abc/json: %d %s", code, body)
	}
	if code, body := do("GET", "/plugins"); code != 200 || strings.TrimSpace(body) != "[]" {
		t.Errorf("GET /plugins: %d %s", code, body)
	}
}
