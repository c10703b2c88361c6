//go:build linux

package engine

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// TestUDPPortForwardHostproc: `-p 0:5353/udp` to a UDP echo server in the container. Two host
// clients each get their own replies, each from its own guest-side source port (one flow per
// client); after rm -f the host port is free again.
func TestUDPPortForwardHostproc(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t, 3*time.Minute)
	c, err := f.e.Create(ctx, CreateOptions{Image: f.ref, Cmd: []string{"/udpecho", "5353"},
		Ports: []PortMapping{{ContainerPort: 5353, Proto: "udp"}}})
	if err != nil {
		t.Fatal(err)
	}
	installTestTool(t, rootOf(t, c), "udpecho")
	if err := f.e.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	waitLog(t, f, c.ID, "listening")
	got := f.inspect(c.ID)
	if len(got.Ports) != 1 || got.Ports[0].HostPort == 0 || got.Ports[0].HostIP != "127.0.0.1" || got.Ports[0].Proto != "udp" {
		t.Fatalf("ports %+v", got.Ports)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", got.Ports[0].HostPort)
	a, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	// ask sends msg until its echo comes back (the first datagrams of a flow may race the stream
	// opening) and returns the guest-side address the server saw.
	ask := func(cl net.Conn, msg string) string {
		t.Helper()
		buf := make([]byte, 1024)
		var from string
		eventually(t, 60*time.Second, "the echo of "+msg, func() bool {
			if _, err := cl.Write([]byte(msg)); err != nil {
				t.Fatal(err)
			}
			cl.SetReadDeadline(time.Now().Add(time.Second))
			for {
				n, err := cl.Read(buf)
				if err != nil {
					return false
				}
				reply := string(buf[:n])
				if rest, ok := strings.CutPrefix(reply, msg+" from "); ok {
					from = rest
					return true
				}
				if !strings.Contains(reply, " from ") || strings.HasPrefix(reply, "b") != strings.HasPrefix(msg, "b") {
					t.Fatalf("client sending %q got %q: another client's reply", msg, reply)
				}
				// An echo of this client's earlier (retried) datagram: read on.
			}
		})
		return from
	}
	froms := map[string]string{}
	for i := 1; i <= 5; i++ { // the clients' flows interleave
		for _, cl := range []struct {
			conn net.Conn
			name string
		}{{a, "a"}, {b, "b"}} {
			from := ask(cl.conn, fmt.Sprintf("%s-%d", cl.name, i))
			if prev, ok := froms[cl.name]; ok && prev != from {
				t.Errorf("client %s: replies from guest source %s, then %s; want one flow", cl.name, prev, from)
			}
			froms[cl.name] = from
		}
	}
	if froms["a"] == froms["b"] {
		t.Errorf("both clients reached the server from %s; want a flow each", froms["a"])
	}

	if err := f.e.Remove(ctx, c.ID, RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the host UDP port to be released", func() bool {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		pc.Close()
		return true
	})
}

func takenUDPPort(t testing.TB) int {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().(*net.UDPAddr).Port
}
