//go:build linux

package engine

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Containers in real VMs: two on one network reach each other by name and alias; one on another
// network reaches neither by name nor by address; a TCP service on the host's 127.0.0.1 is
// reachable only through host.docker.internal.
func TestNetworksQEMU(t *testing.T) {
	e, host, _ := qemuEngine(t)
	f := &fixture{t: t, e: e}
	ctx := ctxT(t, 10*time.Minute)
	for _, name := range []string{"front", "back"} {
		if _, err := e.CreateNetwork(ctx, NetworkCreateOptions{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	lo, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lo.Close()
	go http.Serve(lo, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "host loopback") }))
	loPort := lo.Addr().(*net.TCPAddr).Port

	run := func(name, network string, aliases []string, sh string) *Container {
		c, err := e.Create(ctx, CreateOptions{Image: host + "/busybox:latest", Name: name,
			Networks: []NetworkOptions{{Network: network, Aliases: aliases}}, Cmd: []string{"sh", "-c", sh}})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Start(ctx, c.ID); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		return f.inspect(c.ID)
	}
	web := run("web", "front", []string{"www"}, `mkdir -p /www; echo web page > /www/index.html; echo up; exec httpd -f -p 80 -h /www`)
	cli := run("cli", "front", nil, `echo up; exec sleep 600`)
	other := run("other", "back", nil, `echo up; exec sleep 600`)
	for _, c := range []*Container{web, cli, other} {
		waitLog(t, f, c.ID, "up")
	}
	webIP := web.Networks[0].IPAddress

	wget := func(c *Container, url string) (string, int) {
		return execOut(t, e, c.ID, "timeout", "10", "wget", "-q", "-O", "-", url)
	}
	for _, url := range []string{"http://web/", "http://www/", "http://" + webIP + "/"} {
		var out string
		var code int
		for i := 0; i < 10; i++ { // the guest's network may still be coming up
			if out, code = wget(cli, url); code == 0 {
				break
			}
			time.Sleep(time.Second)
		}
		if out != "web page\n" {
			t.Errorf("cli → %s: %q (exit %d)", url, out, code)
		}
	}
	if out, code := execOut(t, e, cli.ID, "nslookup", "web"); code != 0 || !strings.Contains(out, webIP) {
		t.Errorf("nslookup web in cli: %q (exit %d), want %s", out, code, webIP)
	}
	for _, url := range []string{"http://web/", "http://" + webIP + "/"} {
		if out, code := wget(other, url); code == 0 {
			t.Errorf("other (network back) → %s: %q, want a failure", url, out)
		}
	}

	hostURL := fmt.Sprintf("http://host.docker.internal:%d/", loPort)
	if out, code := wget(other, hostURL); out != "host loopback" {
		t.Errorf("→ %s: %q (exit %d)", hostURL, out, code)
	}
	for _, addr := range []string{"10.0.2.2", "10.0.2.3", "127.0.0.1", webIP} {
		url := fmt.Sprintf("http://%s:%d/", addr, loPort)
		if out, code := wget(cli, url); code == 0 {
			t.Errorf("cli → %s reached the host's loopback: %q", url, out)
		}
	}

	// Connected while running, other reaches web at once; disconnected, no longer.
	if err := e.ConnectNetwork(ctx, "front", "other", NetworkOptions{}); err != nil {
		t.Fatal(err)
	}
	if out, code := wget(other, "http://www/"); out != "web page\n" {
		t.Errorf("other after connect → http://www/: %q (exit %d)", out, code)
	}
	if err := e.DisconnectNetwork(ctx, "front", "other", false); err != nil {
		t.Fatal(err)
	}
	if out, code := wget(other, "http://"+webIP+"/"); code == 0 {
		t.Errorf("other after disconnect → web: %q", out)
	}
}
