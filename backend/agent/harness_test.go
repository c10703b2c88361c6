//go:build linux

package agent_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/internal/testutil"
)

// agentBin is the skiff-agent binary built by TestMain.
var agentBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "skiff-agent-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if bin := os.Getenv("SKIFF_TEST_AGENT"); bin != "" { // e.g. a -race build
		agentBin = bin
		return m.Run()
	}
	agentBin = filepath.Join(dir, "skiff-agent")
	cmd := exec.Command("go", "build", "-o", agentBin, "github.com/skiff-containers/skiff/cmd/skiff-agent")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building skiff-agent: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// testAgent is a skiff-agent host process serving a busybox rootfs.
type testAgent struct {
	t      testing.TB
	cmd    *exec.Cmd
	sock   string
	root   string
	log    *syncBuffer
	c      *agentproto.Client
	exited chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func needRoot(t testing.TB) {
	if os.Geteuid() != 0 {
		t.Skip("host-mode agent tests need root (namespaces, mounts)")
	}
}

// startAgent starts skiff-agent on a fresh busybox rootfs with extra flags.
func startAgent(t testing.TB, extra ...string) *testAgent {
	t.Helper()
	needRoot(t)
	root := testutil.BusyboxRootfs(t)
	sockDir, err := os.MkdirTemp("", "agent")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	a := &testAgent{t: t, sock: filepath.Join(sockDir, "a.sock"), root: root, log: &syncBuffer{}, exited: make(chan struct{})}
	args := append([]string{"--listen", "unix:" + a.sock, "--root", root, "--debug"}, extra...)
	a.cmd = exec.Command(agentBin, args...)
	a.cmd.Stdout, a.cmd.Stderr = a.log, a.log
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = a.cmd.Wait(); close(a.exited) }()
	t.Cleanup(func() {
		_ = a.cmd.Process.Kill()
		<-a.exited
		if strings.Contains(a.log.String(), "DATA RACE") { // a -race agent (SKIFF_TEST_AGENT)
			t.Error("the agent reported a data race")
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", a.log.String())
		}
	})
	a.c = agentproto.NewClient(a.dial)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := a.c.Hello(ctx)
		cancel()
		if err == nil {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent did not come up: %v\n%s", err, a.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (a *testAgent) dial(ctx context.Context) (net.Conn, error) {
	return (&net.Dialer{}).DialContext(ctx, "unix", a.sock)
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// result is what a finished process produced.
type result struct {
	stdout, stderr string
	status         agentproto.ExitStatus
	err            error
}

// collect reads a process's output to EOF and waits for it.
func collect(p *agentproto.Process) result {
	var r result
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		b, _ := io.ReadAll(p.Stderr())
		r.stderr = string(b)
	}()
	b, _ := io.ReadAll(p.Stdout())
	r.stdout = string(b)
	wg.Wait()
	r.status, r.err = p.Wait()
	return r
}

// execOut runs argv in the container and returns its result.
func (a *testAgent) exec(spec agentproto.ProcessSpec) result {
	a.t.Helper()
	p, err := a.c.Exec(ctxT(a.t), spec)
	if err != nil {
		return result{err: err}
	}
	defer p.Close()
	return collect(p)
}

func (a *testAgent) sh(script string) result {
	return a.exec(agentproto.ProcessSpec{Args: []string{"sh", "-c", script}})
}

// runWorkload starts the workload and returns it with a reader for its
// stdout lines; stderr is discarded.
func (a *testAgent) runWorkload(t testing.TB, spec agentproto.ProcessSpec) (*agentproto.Process, *lineReader) {
	t.Helper()
	p, err := a.c.Run(ctxT(t), spec)
	if err != nil {
		t.Fatalf("run %q: %v", spec.Args, err)
	}
	go io.Copy(io.Discard, p.Stderr())
	return p, newLineReader(p.Stdout())
}

// lineReader hands out lines of a stream as they arrive.
type lineReader struct {
	lines chan string
}

func newLineReader(r io.Reader) *lineReader {
	l := &lineReader{lines: make(chan string, 1024)}
	go func() {
		defer close(l.lines)
		var buf []byte
		tmp := make([]byte, 4096)
		for {
			n, err := r.Read(tmp)
			buf = append(buf, tmp[:n]...)
			for {
				i := bytes.IndexByte(buf, '\n')
				if i < 0 {
					break
				}
				l.lines <- strings.TrimRight(string(buf[:i]), "\r")
				buf = buf[i+1:]
			}
			if err != nil {
				return
			}
		}
	}()
	return l
}

// waitFor returns once a line containing want arrives.
func (l *lineReader) waitFor(t testing.TB, want string) {
	var seen []string
	defer func() {
		if t.Failed() {
			t.Logf("lines seen: %q", seen)
		}
	}()
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case line, ok := <-l.lines:
			if !ok {
				t.Fatalf("stream ended before %q", want)
			}
			seen = append(seen, line)
			if strings.Contains(line, want) {
				return
			}
		case <-timeout:
			t.Fatalf("timed out waiting for %q", want)
		}
	}
}
