package qemu_test

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
)

// checkUserNet checks, from inside a guest on the NAT network, that the
// user-space network reaches a host server on the host's own (non-loopback)
// address, does not reach a server on the host's loopback through the
// gateway's address (QEMU's slirp mapped 10.0.2.2 to 127.0.0.1) but only
// through host.docker.internal, and that
// the gateway answers DNS: its own names, and others from the host's
// resolver.
func checkUserNet(t *testing.T, ctx context.Context, c *agentproto.Client) {
	hostIP := hostIPv4(t)
	serve := func(addr, says string) int {
		l, err := net.Listen("tcp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, says) }))
		return l.Addr().(*net.TCPAddr).Port
	}
	wget := func(url string) (string, int) {
		return execOut(t, ctx, c, "timeout", "10", "wget", "-q", "-O", "-", url)
	}

	t.Run("host address through NAT", func(t *testing.T) {
		port := serve(hostIP+":0", "host says hi")
		var out string
		for i := 0; i < 30; i++ { // the guest's interface may still be coming up
			if out, _ = wget(fmt.Sprintf("http://%s:%d/", hostIP, port)); out == "host says hi" {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if out != "host says hi" {
			t.Fatalf("guest → %s:%d: %q", hostIP, port, out)
		}
		// Bytes both ways in full-size frames, unchanged.
		data := make([]byte, 4<<20)
		rand.Read(data)
		port = serve(hostIP+":0", string(data))
		out, code := execOut(t, ctx, c, "sh", "-c", fmt.Sprintf("wget -q -O - http://%s:%d/ | md5sum", hostIP, port))
		if want := fmt.Sprintf("%x", md5.Sum(data)); code != 0 || !strings.HasPrefix(out, want) {
			t.Errorf("4 MiB from the host: md5 %q exit %d, want %s", out, code, want)
		}
		l, err := net.Listen("tcp4", hostIP+":0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		sum := make(chan string, 1)
		go func() {
			conn, err := l.Accept()
			if err != nil {
				sum <- err.Error()
				return
			}
			defer conn.Close()
			h := md5.New()
			n, _ := io.CopyN(h, conn, 4<<20) // then close: nc waits for the host to
			sum <- fmt.Sprintf("%x %d", h.Sum(nil), n)
		}()
		out, code = execOut(t, ctx, c, "sh", "-c", fmt.Sprintf(
			"head -c 4194304 /dev/urandom > /tmp/up && md5sum /tmp/up && nc %s %d < /tmp/up", hostIP, l.Addr().(*net.TCPAddr).Port))
		got := <-sum
		if f := strings.Fields(out); code != 0 || len(f) == 0 || got != f[0]+" 4194304" {
			t.Errorf("4 MiB to the host: the host got %q, the guest sent %q (exit %d)", got, out, code)
		}
	})
	t.Run("no host loopback", func(t *testing.T) {
		port := serve("127.0.0.1:0", "host loopback")
		for _, addr := range []string{"10.0.2.2", "10.0.2.3"} {
			if out, code := wget(fmt.Sprintf("http://%s:%d/", addr, port)); code == 0 || strings.Contains(out, "host loopback") {
				t.Errorf("guest → %s:%d reached the host's loopback: exit %d, %q", addr, port, code, out)
			}
		}
		// The one way in: host.docker.internal (10.0.2.254).
		if out, code := wget(fmt.Sprintf("http://host.docker.internal:%d/", port)); out != "host loopback" {
			t.Errorf("guest → host.docker.internal:%d: exit %d, %q", port, code, out)
		}
	})
	t.Run("DNS", func(t *testing.T) {
		out, code := execOut(t, ctx, c, "nslookup", "gateway.skiff.internal", "10.0.2.3")
		if code != 0 || !strings.Contains(out, "Address: 10.0.2.2") {
			t.Errorf("nslookup gateway.skiff.internal: exit %d\n%s", code, out)
		}
		// A name only the host's resolver knows (its /etc/hosts, its DNS).
		name, _ := os.Hostname()
		addrs, err := net.DefaultResolver.LookupIP(ctx, "ip4", name)
		if err != nil || len(addrs) == 0 {
			t.Fatalf("the host cannot resolve its own name %q: %v", name, err)
		}
		out, code = execOut(t, ctx, c, "nslookup", name+".", "10.0.2.3")
		if code != 0 || !strings.Contains(out, "Address: "+addrs[0].String()) {
			t.Errorf("nslookup %s (the host says %v): exit %d\n%s", name, addrs, code, out)
		}
	})
}

// hostIPv4 is the first non-loopback IPv4 address of the host's interfaces
// that are up.
func hostIPv4(t testing.TB) string {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
				return n.IP.String()
			}
		}
	}
	t.Fatal("the host has no non-loopback IPv4 address to test the network with")
	return ""
}
