package bridge_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/skiff-containers/skiff/app/apptest"
	"github.com/skiff-containers/skiff/app/bridge"
)

// Which Host headers name a listener: localhost or its IP literal with its port (any IP literal on a
// wildcard listener, any loopback one on a loopback listener); never another name.
func TestProtectHostRules(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	for _, c := range []struct {
		listen string
		host   string
		want   int
	}{
		{"127.0.0.1:8470", "127.0.0.1:8470", 200},
		{"127.0.0.1:8470", "localhost:8470", 200},
		{"127.0.0.1:8470", "LocalHost:8470", 200},
		{"127.0.0.1:8470", "127.0.0.2:8470", 200},
		{"127.0.0.1:8470", "[::1]:8470", 200},
		{"127.0.0.1:8470", "127.0.0.1:8471", 421},
		{"127.0.0.1:8470", "127.0.0.1", 421},
		{"127.0.0.1:8470", "localhost.:8470", 421},
		{"127.0.0.1:8470", "rebound.example:8470", 421},
		{"127.0.0.1:8470", "192.168.1.5:8470", 421},
		{"127.0.0.1:8470", "", 421},
		{"127.0.0.1:80", "127.0.0.1", 200},
		{"[::1]:8470", "[::1]:8470", 200},
		{"[::1]:8470", "localhost:8470", 200},
		{"[::1]:8470", "[fe80::1%25eth0]:8470", 421},
		{"0.0.0.0:8470", "192.168.1.5:8470", 200},
		{"0.0.0.0:8470", "[2001:db8::1]:8470", 200},
		{"0.0.0.0:8470", "myhost.lan:8470", 421},
		{"192.168.1.5:8470", "192.168.1.5:8470", 200},
		{"192.168.1.5:8470", "192.168.1.6:8470", 421},
	} {
		addr, err := net.ResolveTCPAddr("tcp", c.listen)
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("GET", "/api/health", nil)
		r.Host = c.host
		r.Header.Set("Authorization", "Bearer tok")
		w := httptest.NewRecorder()
		bridge.Protect(addr, "tok", ok).ServeHTTP(w, r)
		if w.Code != c.want {
			t.Errorf("listening on %s, Host %q: %d, want %d", c.listen, c.host, w.Code, c.want)
		}
	}
}

// A client that never finishes its headers is dropped, on the socket and over TCP.
func TestSlowHeadersDropped(t *testing.T) {
	sock := serveUnix(t, apptest.NewFake())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	t.Cleanup(func() { cancel(); <-done }) // after the parallel subtests
	go func() { done <- bridge.NewServer(apptest.NewFake()).Serve(ctx, l, bridge.NewToken()) }()
	for _, addr := range []struct{ network, addr string }{{"unix", sock}, {"tcp", l.Addr().String()}} {
		t.Run(addr.network, func(t *testing.T) {
			t.Parallel()
			c, err := net.Dial(addr.network, addr.addr)
			if err != nil {
				t.Fatal(err)
			}
			apptest.CheckSlowHeadersDropped(t, c)
		})
	}
}
