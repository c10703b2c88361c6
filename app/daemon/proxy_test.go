package daemon

import (
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/skiff-containers/skiff/app/apptest"
	"github.com/skiff-containers/skiff/app/bridge"
)

// The dashboard of `skiff serve` when another engine holds the data dir: serveProxy in front of a
// real bridge on a unix socket (whose own handler lets any origin upgrade) passes the same gate as
// the bridge's own TCP server, and drops a client that never finishes its headers.
func TestProxyDashboardGuard(t *testing.T) {
	dir, err := os.MkdirTemp("", "skiff-proxy-") // short: sun_path is ~108 bytes
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, bridge.SocketName)
	l, err := bridge.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	engineDone := make(chan error, 1)
	go func() { engineDone <- bridge.NewServer(apptest.NewFake()).Serve(ctx, l, "") }()

	printed := make(chan string, 1)
	proxyDone := make(chan error, 1)
	cfg := Config{HTTPAddr: "127.0.0.1:0", Assets: fstest.MapFS{"index.html": {Data: []byte("<title>Skiff</title>")}},
		OnHTTP: func(u string) { printed <- u }}
	go func() { proxyDone <- serveProxy(ctx, cfg, sock) }()
	defer func() {
		cancel()
		if err := <-proxyDone; err != nil {
			t.Errorf("serveProxy: %v", err)
		}
		if err := <-engineDone; err != nil {
			t.Errorf("bridge Serve: %v", err)
		}
	}()
	var u *url.URL
	select {
	case s := <-printed:
		if u, err = url.Parse(s); err != nil {
			t.Fatal(err)
		}
	case err := <-proxyDone:
		proxyDone <- nil // for the deferred wait
		t.Fatalf("serveProxy: %v", err)
	}
	apptest.CheckDashboardGuard(t, u.Host, u.Query().Get("token"))
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	apptest.CheckSlowHeadersDropped(t, c)
}
