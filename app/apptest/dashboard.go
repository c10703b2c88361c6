package apptest

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// CheckDashboardGuard checks, over real connections, the gate in front of a dashboard that `skiff
// serve` listens on at addr ("127.0.0.1:port") with token: what a page of another origin, a
// DNS-rebound name or a token left in a URL can and cannot do. The bridge's own server and the
// daemon's proxy to the engine's socket must both pass it.
func CheckDashboardGuard(t *testing.T, addr, token string) {
	t.Helper()
	_, port, _ := net.SplitHostPort(addr)
	cookie := "skiff_token=" + token
	own := "http://" + addr

	// A browser page sends the cookie along with any request to this host and its own Origin.
	upgrade := func(origin, host string) (int, *websocket.Conn) {
		t.Helper()
		h := http.Header{"Cookie": {cookie}}
		if origin != "" {
			h.Set("Origin", origin)
		}
		if host != "" {
			h.Set("Host", host)
		}
		ws, resp, err := websocket.DefaultDialer.Dial("ws://"+addr+"/api/ws", h)
		if resp == nil {
			t.Fatalf("upgrade from %q: %v", origin, err)
		}
		return resp.StatusCode, ws
	}
	for _, origin := range []string{"http://127.0.0.1:1", "http://127.0.0.1", "http://localhost:" + port,
		"http://evil.example", "https://" + addr, "null"} {
		if code, ws := upgrade(origin, ""); code != http.StatusForbidden {
			t.Errorf("WebSocket upgrade with the cookie from origin %q: %d, want 403", origin, code)
			if ws != nil {
				ws.Close()
			}
		}
	}
	code, ws := upgrade(own, "")
	if code != http.StatusSwitchingProtocols {
		t.Fatalf("same-origin WebSocket upgrade with the cookie: %d, want 101", code)
	}
	ws.WriteJSON(map[string]any{"id": 1, "method": "Containers.List", "params": []any{true}})
	var reply struct {
		ID     int             `json:"id"`
		Result json.RawMessage `json:"result"`
	}
	var list []json.RawMessage
	if err := ws.ReadJSON(&reply); err != nil || reply.ID != 1 || json.Unmarshal(reply.Result, &list) != nil {
		t.Errorf("call over the same-origin WebSocket: %+v %s %v", reply, reply.Result, err)
	}
	ws.Close()
	if code, ws := upgrade("", "rebound.example:"+port); code != http.StatusMisdirectedRequest {
		t.Errorf("WebSocket upgrade to Host rebound.example:%s: %d, want 421", port, code)
		if ws != nil {
			ws.Close()
		}
	}

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path string, hdr map[string]string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(""))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			if k == "Host" {
				req.Host = v
			} else {
				req.Header.Set(k, v)
			}
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	bearer := "Bearer " + token
	for _, c := range []struct {
		method, path string
		hdr          map[string]string
		want         int
	}{
		{"GET", "/api/health", map[string]string{"Authorization": bearer}, 200}, // the CLI: no Origin
		{"GET", "/api/health", nil, 401},
		{"GET", "/api/health", map[string]string{"Cookie": cookie}, 200},
		{"GET", "/api/health", map[string]string{"Cookie": cookie, "Origin": own}, 200},
		{"POST", "/api/health", map[string]string{"Cookie": cookie, "Origin": "http://127.0.0.1:1"}, 403},
		{"PUT", "/", map[string]string{"Cookie": cookie, "Origin": "http://evil.example"}, 403},
		{"GET", "/api/health", map[string]string{"Cookie": cookie, "Origin": "http://evil.example"}, 403},
		{"GET", "/api/health", map[string]string{"Authorization": bearer, "Host": "localhost:" + port}, 200},
		{"GET", "/api/health", map[string]string{"Authorization": bearer, "Host": "rebound.example:" + port}, 421},
		{"GET", "/", map[string]string{"Cookie": cookie, "Host": "rebound.example:" + port}, 421},
		{"GET", "/api/health", map[string]string{"Authorization": bearer, "Host": "127.0.0.1:1"}, 421},
		{"GET", "/api/health", map[string]string{"Authorization": bearer, "Host": "localhost"}, 421},
	} {
		if resp := do(c.method, c.path, c.hdr); resp.StatusCode != c.want {
			t.Errorf("%s %s %v: %d, want %d", c.method, c.path, c.hdr, resp.StatusCode, c.want)
		}
	}

	// The printed URL's token becomes a cookie and leaves the address bar.
	for path, want := range map[string]string{
		"/?token=" + token:                     "/",
		"/?token=" + token + "&x=1":            "/?x=1",
		"/logs/a%2Fb?token=" + token + "#/x":   "/logs/a%2Fb",
		"//evil.example/?token=" + token:       "/evil.example/",
		"/api/health?a=b&token=" + token + "&": "/api/health?a=b",
	} {
		resp := do("GET", path, nil)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
			t.Errorf("GET %s: %d to %q, want 303 to %q", path, resp.StatusCode, resp.Header.Get("Location"), want)
		}
		var got *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == "skiff_token" {
				got = c
			}
		}
		if got == nil || got.Value != token || !got.HttpOnly || got.SameSite != http.SameSiteStrictMode || got.Path != "/" {
			t.Errorf("GET %s: cookie %+v, want skiff_token=<token>; Path=/; HttpOnly; SameSite=Strict", path, got)
		}
	}
	if resp := do("GET", "/?token=wrong", nil); resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Errorf("GET /?token=wrong: %d %v, want 401 and no cookie", resp.StatusCode, resp.Cookies())
	}
	// Clients that put the token in a WebSocket URL still connect.
	ws2, resp, err := websocket.DefaultDialer.Dial("ws://"+addr+"/api/ws?token="+token, nil)
	if err != nil {
		t.Errorf("WebSocket with ?token=: %v %v", resp, err)
	} else {
		ws2.Close()
	}
}

// CheckSlowHeadersDropped checks that a server drops c, a connection to it, when the client sends
// the start of a request and never finishes its headers (within httpserve.ReadHeaderTimeout, 10 s,
// read here with a 20 s margin). It takes about 10 s: run the test in parallel.
func CheckSlowHeadersDropped(t *testing.T, c net.Conn) {
	t.Helper()
	defer c.Close()
	if _, err := c.Write([]byte("GET /api/health HTTP/1.1\r\nHost: localhost\r\n")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	start := time.Now()
	_, err := io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Errorf("a client that never finished its headers still held the connection after %v", time.Since(start).Round(time.Second))
	}
}
