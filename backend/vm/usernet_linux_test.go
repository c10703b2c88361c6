package vm_test

import (
	"context"
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
// gateway's address (QEMU's slirp mapped 10.0.2.2 to 127.0.0.1), and that
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
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("guest → %s:%d: %q", hostIP, port, out)
	})
	t.Run("no host loopback", func(t *testing.T) {
		port := serve("127.0.0.1:0", "host loopback")
		for _, addr := range []string{"10.0.2.2", "10.0.2.3"} {
			if out, code := wget(fmt.Sprintf("http://%s:%d/", addr, port)); code == 0 || strings.Contains(out, "host loopback") {
				t.Errorf("guest → %s:%d reached the host's loopback: exit %d, %q", addr, port, code, out)
			}
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
