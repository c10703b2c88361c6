package docker_test

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// attachRaw makes the hijacked attach request of the Engine API by hand and returns what the
// stream carried, demultiplexed ("1:" stdout, "2:" stderr chunks).
func attachRaw(t *testing.T, id, query string) string {
	t.Helper()
	c, err := net.Dial("unix", filepath.Join(env.home, "docker.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	fmt.Fprintf(c, "POST /v1.50/containers/%s/attach?%s HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n", id, query)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Content-Type") != "application/vnd.docker.multiplexed-stream" {
		t.Fatalf("attach answered %s %v", resp.Status, resp.Header)
	}
	var out strings.Builder
	for {
		var hdr [8]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			break
		}
		b := make([]byte, binary.BigEndian.Uint32(hdr[4:]))
		if _, err := io.ReadFull(br, b); err != nil {
			t.Fatalf("a frame cut short: %v", err)
		}
		fmt.Fprintf(&out, "%d:%s", hdr[0], b)
	}
	return out.String()
}

func TestAttach(t *testing.T) {
	need(t)
	loadBusybox(t)
	dockerOK(t, "create", "--name", "sa", "busybox", "sh", "-c", "echo again; echo oops >&2")
	defer docker(t, "rm", "-f", "sa")
	// docker start -a attaches (before the start) and prints the run's output, twice.
	for i := 0; i < 2; i++ {
		if r := docker(t, "start", "-a", "sa"); r.code != 0 || r.stdout != "again\n" || r.stderr != "oops\n" {
			t.Errorf("docker start -a, run %d: %s", i+1, r)
		}
	}
	// logs=1 without stream: the output so far (both runs), then the end.
	got := attachRaw(t, "sa", "logs=1&stdout=1&stderr=1")
	if strings.Count(got, "1:again\n") != 2 || strings.Count(got, "2:oops\n") != 2 {
		t.Errorf("attach logs=1: %q", got)
	}
	if got := attachRaw(t, "sa", "logs=1&stdout=1"); got != "1:again\n1:again\n" {
		t.Errorf("attach logs=1 stdout only: %q", got)
	}
}
