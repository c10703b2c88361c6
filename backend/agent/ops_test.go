//go:build linux

package agent_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
)

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestPortForward(t *testing.T) {
	a := startAgent(t)
	ctx := ctxT(t)
	_, lines := a.runWorkload(t, agentproto.ProcessSpec{Args: []string{"sh", "-c", "echo ready; exec sleep 1000"}})
	lines.waitFor(t, "ready")
	if err := os.WriteFile(filepath.Join(a.root, "var/www/index.html"), []byte("hello from httpd\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	httpd, err := a.c.Exec(ctx, agentproto.ProcessSpec{Args: []string{"httpd", "-f", "-p", "127.0.0.1:" + strconv.Itoa(port), "-h", "/var/www"}})
	if err != nil {
		t.Fatal(err)
	}
	defer httpd.Close()

	t.Run("httpd", func(t *testing.T) {
		var reply []byte
		deadline := time.Now().Add(10 * time.Second)
		for {
			conn, err := a.c.Forward(ctx, port)
			if err == nil {
				io.WriteString(conn, "GET /index.html HTTP/1.0\r\n\r\n")
				conn.(interface{ CloseWrite() error }).CloseWrite()
				reply, err = io.ReadAll(conn)
				conn.Close()
				if err == nil {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("forward to httpd: %v", err)
			}
			time.Sleep(50 * time.Millisecond) // httpd still starting
		}
		if !bytes.HasPrefix(reply, []byte("HTTP/1.")) || !bytes.HasSuffix(reply, []byte("hello from httpd\n")) {
			t.Fatalf("reply %q", reply)
		}
	})

	t.Run("nc half-close both ways", func(t *testing.T) {
		port := freePort(t)
		// nc prints what it receives, then answers once its input ended.
		nc, err := a.c.Exec(ctx, agentproto.ProcessSpec{Args: []string{"sh", "-c",
			fmt.Sprintf("echo reply-from-guest | nc -l -p %d 127.0.0.1 > /tmp/got", port)}})
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		var conn net.Conn
		for i := 0; ; i++ {
			if conn, err = a.c.Forward(ctx, port); err == nil {
				break
			}
			if i > 200 {
				t.Fatalf("forward to nc: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		// nc sends its reply and half-closes (its stdin ended) ...
		reply, err := io.ReadAll(conn)
		if err != nil || string(reply) != "reply-from-guest\n" {
			t.Fatalf("reply %q err %v", reply, err)
		}
		// ... while still reading ours, until we half-close in turn.
		payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
		if _, err := conn.Write(payload); err != nil {
			t.Fatal(err)
		}
		if err := conn.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if st, err := nc.Wait(); err != nil || st.Code != 0 {
			t.Fatalf("nc: %+v %v", st, err)
		}
		got, _ := os.ReadFile(filepath.Join(a.root, "tmp/got"))
		if !bytes.Equal(got, payload) {
			t.Fatalf("guest got %d bytes, want %d", len(got), len(payload))
		}
	})

	t.Run("udp datagrams", func(t *testing.T) {
		// Host mode shares the host's loopback: an echo server in the test
		// stands in for a UDP service in the guest.
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		go func() {
			buf := make([]byte, 65536)
			for {
				n, addr, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				pc.WriteTo(append([]byte("echo:"), buf[:n]...), addr)
			}
		}()
		conn, err := a.c.ForwardUDP(ctx, pc.LocalAddr().(*net.UDPAddr).Port)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		for _, msg := range []string{"one", "two", strings.Repeat("x", 60000)} {
			if _, err := conn.Write([]byte(msg)); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 65536)
			n, err := conn.Read(buf)
			if err != nil || string(buf[:n]) != "echo:"+msg {
				t.Fatalf("reply of %d bytes %.20q, err %v", n, buf[:n], err)
			}
		}
	})

	t.Run("closed port", func(t *testing.T) {
		if _, err := a.c.Forward(ctx, freePort(t)); err == nil || !strings.Contains(err.Error(), "refused") {
			t.Fatalf("forward to a closed port: %v", err)
		}
	})
}

func TestMountTouchSetTime(t *testing.T) {
	share := t.TempDir()
	if err := os.WriteFile(filepath.Join(share, "file"), []byte("shared"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, "--share", "data="+share)
	ctx := ctxT(t)
	_, lines := a.runWorkload(t, agentproto.ProcessSpec{Args: []string{"sh", "-c", "echo ready; exec sleep 1000"}})
	lines.waitFor(t, "ready")

	// Mounted while the workload runs: it must appear inside.
	if err := a.c.Mount(ctx, agentproto.MountSpec{Tag: "data", Target: "/mnt/data", ReadOnly: true}); err != nil {
		t.Fatal(err)
	}
	if err := a.c.Mount(ctx, agentproto.MountSpec{Tag: "data", Target: "/mnt/rw"}); err != nil {
		t.Fatal(err)
	}
	r := a.sh("cat /mnt/data/file; touch /mnt/data/new 2>/dev/null && echo ro-broken; echo x > /mnt/rw/new && echo rw-ok")
	if r.stdout != "sharedrw-ok\n" {
		t.Fatalf("got %q (stderr %q)", r.stdout, r.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(share, "new")); string(b) != "x\n" {
		t.Errorf("write through the share: %q", b)
	}
	if err := a.c.Mount(ctx, agentproto.MountSpec{Tag: "nope", Target: "/x"}); !errors.Is(err, agentproto.ErrNotFound) {
		t.Errorf("unknown tag: %v", err)
	}
	// A target that is a symlink out of the root stays inside it.
	os.Symlink("/", filepath.Join(a.root, "escape"))
	if err := a.c.Mount(ctx, agentproto.MountSpec{Tag: "data", Target: "/escape/etc"}); err != nil {
		t.Fatal(err)
	}
	if r := a.sh("cat /etc/file"); r.stdout != "shared" {
		t.Errorf("symlinked target not resolved in the root: %q", r.stdout)
	}
	if _, err := os.Stat("/etc/file"); err == nil {
		t.Fatal("mount escaped the container root onto the host's /etc")
	}
	// Unmount detaches in the workload's view too, through a symlinked target inside the root as well.
	for _, target := range []string{"/mnt/rw", "/escape/etc"} {
		if err := a.c.Unmount(ctx, target); err != nil {
			t.Fatalf("unmount %s: %v", target, err)
		}
	}
	if r := a.sh("ls /mnt/rw /proc/1/root/mnt/rw; cat /proc/1/root/mnt/data/file"); r.stdout != "/mnt/rw:\n\n/proc/1/root/mnt/rw:\nshared" {
		t.Errorf("after unmount: %q (stderr %q)", r.stdout, r.stderr)
	}
	if err := a.c.Unmount(ctx, "/mnt/rw"); err == nil {
		t.Error("unmount of a path with nothing mounted succeeded")
	}

	// Touch bumps the mtime seen in the container.
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	f := filepath.Join(a.root, "tmp/watched")
	os.WriteFile(f, nil, 0o644)
	os.Chtimes(f, old, old)
	if err := a.c.Touch(ctx, []string{"/tmp/watched"}); err != nil {
		t.Fatal(err)
	}
	r = a.sh("stat -c %Y /tmp/watched")
	sec, _ := strconv.ParseInt(strings.TrimSpace(r.stdout), 10, 64)
	if time.Since(time.Unix(sec, 0)) > time.Minute {
		t.Errorf("mtime after touch: %q", r.stdout)
	}
	if err := a.c.Touch(ctx, []string{"/no/such/file"}); err == nil {
		t.Error("touch of a missing path succeeded")
	}

	if err := a.c.SetTime(ctx, time.Now()); !errors.Is(err, agentproto.ErrNotSupported) {
		t.Errorf("settime in host mode: %v, want ErrNotSupported", err)
	}
}

func TestStats(t *testing.T) {
	a := startAgent(t)
	ctx := ctxT(t)
	if _, err := a.c.Stats(ctx); !errors.Is(err, agentproto.ErrNotRunning) {
		t.Errorf("stats without workload: %v", err)
	}
	_, lines := a.runWorkload(t, agentproto.ProcessSpec{Args: []string{"sh", "-c", "echo ready; while :; do :; done"}})
	lines.waitFor(t, "ready")
	s1, err := a.c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var s2 *agentproto.Stats
	for deadline := time.Now().Add(15 * time.Second); ; { // the CI machine may be busy
		time.Sleep(100 * time.Millisecond)
		if s2, err = a.c.Stats(ctx); err != nil {
			t.Fatal(err)
		}
		if s2.CPUUsageNanos >= s1.CPUUsageNanos+uint64(300*time.Millisecond) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU time under a busy loop: %d → %d ns", s1.CPUUsageNanos, s2.CPUUsageNanos)
		}
	}
	if s2.PIDs < 1 || s2.CPUs < 1 || s2.MemoryLimit == 0 || s2.MemoryUsage == 0 || s2.Time.IsZero() {
		t.Errorf("implausible stats %+v", s2)
	}

	// dd fills a 64 MiB buffer, then blocks writing it to a pipe nobody reads.
	mem, err := a.c.Exec(ctx, agentproto.ProcessSpec{Args: []string{"sh", "-c", "dd if=/dev/zero bs=64M count=1 | sleep 1000"}})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	var s3 *agentproto.Stats
	for deadline := time.Now().Add(15 * time.Second); ; {
		if s3, err = a.c.Stats(ctx); err != nil {
			t.Fatal(err)
		}
		if s3.MemoryUsage >= s2.MemoryUsage+60<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("memory after allocating 64 MiB: %d → %d", s2.MemoryUsage, s3.MemoryUsage)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s3.PIDs < s2.PIDs+1 {
		t.Errorf("pids %d → %d", s2.PIDs, s3.PIDs)
	}
	// Block I/O: write and sync a file.
	a.sh("dd if=/dev/urandom of=/tmp/blk bs=1M count=8 2>/dev/null; sync")
	if s4, err := a.c.Stats(ctx); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("stats: %+v", s4)
	}
}

// rawStream opens a stream to the agent without the client.
func rawStream(t *testing.T, a *testAgent) net.Conn {
	c, err := a.dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

func frame(typ agentproto.Type, payload []byte) []byte {
	b := make([]byte, agentproto.HeaderSize+len(payload))
	agentproto.PutHeader(b, typ, len(payload))
	copy(b[agentproto.HeaderSize:], payload)
	return b
}

func hello(version int) []byte {
	p, _ := agentproto.Encode(agentproto.Hello{ProtocolVersion: version})
	return frame(agentproto.TypeHello, p)
}

// replies reads frames until the stream closes and returns the Error
// messages among them.
func replies(t *testing.T, c net.Conn) []agentproto.Error {
	var errs []agentproto.Error
	for {
		f, err := agentproto.ReadFrame(c, nil)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("agent neither answered nor closed the stream")
			}
			return errs
		}
		if m, err := agentproto.Decode(f); err == nil {
			if e, ok := m.(agentproto.Error); ok {
				errs = append(errs, e)
			}
		}
	}
}

func TestBadInput(t *testing.T) {
	a := startAgent(t)
	ctx := ctxT(t)
	wl, lines := a.runWorkload(t, agentproto.ProcessSpec{Args: []string{"sh", "-c", "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.05; done"}})
	lines.waitFor(t, "tick 1")
	random := make([]byte, 64<<10)
	rand.Read(random)
	huge := make([]byte, agentproto.HeaderSize)
	binary.BigEndian.PutUint32(huge, 0xfffffff0)
	huge[4] = byte(agentproto.TypeRequest)

	cases := []struct {
		name     string
		send     []byte
		wantCode string // "" = an error or a closed stream is enough
	}{
		{"unknown operation", append(hello(agentproto.ProtocolVersion), frame(agentproto.TypeRequest, []byte(`{"Op":"teleport"}`))...), agentproto.CodeUnknownOperation},
		{"malformed request", append(hello(agentproto.ProtocolVersion), frame(agentproto.TypeRequest, []byte(`{"Op":`))...), agentproto.CodeBadRequest},
		{"wrong first frame", frame(agentproto.TypeStdin, []byte("hi")), agentproto.CodeBadRequest},
		{"oversized frame", append(hello(agentproto.ProtocolVersion), huge...), agentproto.CodeBadRequest},
		{"oversized hello", huge, agentproto.CodeBadRequest},
		{"version mismatch", hello(99), agentproto.CodeVersion},
		{"random bytes", random, ""},
		{"random after hello", append(hello(agentproto.ProtocolVersion), random...), ""},
		{"truncated frame", append(hello(agentproto.ProtocolVersion), frame(agentproto.TypeRequest, []byte(`{"Op":"stats"}`))[:9]...), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := rawStream(t, a)
			defer c.Close()
			c.Write(tc.send)
			if tc.name == "truncated frame" {
				c.(*net.UnixConn).CloseWrite()
			}
			errs := replies(t, c)
			if tc.wantCode != "" && (len(errs) == 0 || errs[len(errs)-1].Code != tc.wantCode) {
				t.Errorf("errors %+v, want code %s", errs, tc.wantCode)
			}
			if tc.wantCode == agentproto.CodeVersion && !strings.Contains(errs[len(errs)-1].Message, "99") {
				t.Errorf("version error does not name the host version: %q", errs[len(errs)-1].Message)
			}
			// The agent keeps serving and the workload keeps running.
			if _, err := a.c.Stats(ctx); err != nil {
				t.Fatalf("agent after bad input: %v", err)
			}
		})
	}
	lines.waitFor(t, "tick")
	select {
	case <-wl.Done():
		t.Fatal("workload died")
	default:
	}
	// A process stream that receives nonsense mid-way ends with an error,
	// and its process is not left behind.
	c := rawStream(t, a)
	spec, _ := agentproto.Encode(agentproto.Request{Op: agentproto.OpExec, Process: &agentproto.ProcessSpec{Args: []string{"sleep", "1000"}}})
	c.Write(append(append(hello(agentproto.ProtocolVersion), frame(agentproto.TypeRequest, spec)...), random...))
	replies(t, c)
	c.Close()
	time.Sleep(200 * time.Millisecond)
	if r := a.sh("ps -o args | grep -c '^sleep 1000' || true"); strings.TrimSpace(r.stdout) != "0" {
		t.Errorf("sleep processes after a broken exec stream: %q", r.stdout)
	}
}

func TestShutdown(t *testing.T) {
	a := startAgent(t)
	ctx := ctxT(t)
	wl, lines := a.runWorkload(t, agentproto.ProcessSpec{Args: []string{"sh", "-c", "echo ready; exec sleep 1000"}})
	lines.waitFor(t, "ready")
	if err := a.c.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := wl.Wait(); st.Code != 137 {
		t.Errorf("workload after shutdown: %+v", st)
	}
	select {
	case <-a.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("agent still running after shutdown")
	}
	if a.cmd.ProcessState.ExitCode() != 0 {
		t.Errorf("agent exit code %d", a.cmd.ProcessState.ExitCode())
	}
}

// A host-mode workload dies with its agent (Pdeathsig), whichever OS thread
// the container init helper's Go runtime had it on before exec: several
// rounds, since a helper that execs from the wrong thread loses the signal
// only sometimes.
func TestWorkloadDiesWithHostAgent(t *testing.T) {
	for round := 0; round < 4; round++ {
		a := startAgent(t)
		wl, lines := a.runWorkload(t, agentproto.ProcessSpec{Args: []string{"sh", "-c", "echo up; exec sleep 1000"}})
		lines.waitFor(t, "up")
		pid := wl.PID()
		if pid <= 0 {
			t.Fatalf("workload pid %d", pid)
		}
		_ = a.cmd.Process.Kill()
		<-a.exited
		deadline := time.Now().Add(10 * time.Second)
		for alive(pid) {
			if time.Now().After(deadline) {
				_ = killPID(pid)
				t.Fatalf("round %d: workload %d outlived its killed agent", round, pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z'
}

func killPID(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}
