package docker_test

import (
	"debug/elf"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/skiff-containers/skiff/internal/testutil"
)

// TestDockerSocketInContainer: `-v /var/run/docker.sock:/var/run/docker.sock` (the path the CLI
// takes for the daemon's, while DOCKER_HOST points at Skiff's) and a bind of Skiff's docker.sock
// itself give the container a socket to the engine: the docker CLI, run inside, lists its own
// container. Any other unix socket is refused with a message naming it.
func TestDockerSocketInContainer(t *testing.T) {
	need(t)
	loadBusybox(t)
	if f, err := elf.Open(env.docker); err != nil {
		t.Skipf("docker CLI %s: %v", env.docker, err)
	} else {
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				f.Close()
				t.Skipf("the docker CLI %s is linked dynamically: it cannot run in busybox", env.docker)
			}
		}
		f.Close()
	}
	bin := filepath.Dir(env.docker)
	r := docker(t, "run", "--rm", "--name", "dind", "-e", "HOME=/tmp",
		"-v", "/var/run/docker.sock:/var/run/docker.sock", "-v", bin+":/dk:ro",
		"busybox", "/dk/docker", "ps", "--format", "{{.Names}}")
	if r.code != 0 || !strings.Contains(r.stdout, "dind") {
		t.Errorf("docker ps inside a container with /var/run/docker.sock: %s", r)
	}
	r = docker(t, "run", "--rm", "--name", "dind2", "-e", "HOME=/tmp", "-e", "DOCKER_HOST=unix:///sk/docker.sock",
		"-v", filepath.Join(env.home, "docker.sock")+":/sk/docker.sock", "-v", bin+":/dk:ro",
		"busybox", "/dk/docker", "inspect", "--format", "{{.Name}}", "dind2")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "/dind2" {
		t.Errorf("docker inspect inside a container with Skiff's docker.sock: %s", r)
	}
}

// TestHostSocketInContainer: `-v /path/any.sock:/target` (docker run, --mount, and skiff run) gives the
// container a unix socket at the target whose connections reach that host socket (here the
// test's echo server, as an SSH agent's would be); docker inspect lists it among the mounts as
// a bind. A link put in the socket's place after create fails the start; a source that does not
// exist, or is a fifo, is refused with a message naming it.
func TestHostSocketInContainer(t *testing.T) {
	need(t)
	loadBusybox(t)
	bin := t.TempDir()
	if _, err := testutil.BuildSockClient(bin); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "sk") // short: sun_path
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var conns atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				b, _ := io.ReadAll(c)
				c.Write(append([]byte("echo:"), b...))
			}()
		}
	}()

	r := docker(t, "run", "--rm", "-v", sock+":/ssh-agent", "-v", bin+":/se:ro", "busybox", "/se/sockclient", "/ssh-agent", "hello")
	if r.code != 0 || r.stdout != "echo:hello" {
		t.Fatalf("docker run with a host socket: %s, want echo:hello", r)
	}
	dockerOK(t, "run", "-d", "--name", "hostsock", "-v", sock+":/run/x.sock:ro", "--mount", "type=bind,src="+sock+",dst=/run/y.sock",
		"-v", bin+":/se:ro", "busybox", "sleep", "300")
	defer docker(t, "rm", "-f", "hostsock")
	for _, msg := range []string{"one", "two"} {
		if out := dockerOK(t, "exec", "hostsock", "/se/sockclient", "/run/x.sock", msg); out != "echo:"+msg {
			t.Errorf("docker exec through the socket: %q, want echo:%s", out, msg)
		}
	}
	if out := dockerOK(t, "exec", "hostsock", "/se/sockclient", "/run/y.sock", "mount"); out != "echo:mount" {
		t.Errorf("docker exec through the --mount socket: %q, want echo:mount", out)
	}
	if out := dockerOK(t, "exec", "hostsock", "ls", "-l", "/run/x.sock"); !strings.HasPrefix(out, "s") {
		t.Errorf("ls -l /run/x.sock: %q, want a socket", out)
	}
	var mounts []struct {
		Type, Source, Destination string
		RW                        bool
	}
	if err := json.Unmarshal([]byte(dockerOK(t, "inspect", "--format", "{{json .Mounts}}", "hostsock")), &mounts); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range mounts {
		if m.Destination == "/run/x.sock" {
			found = m.Type == "bind" && m.Source == sock && !m.RW
		}
	}
	if !found {
		t.Errorf("docker inspect .Mounts %+v: want a read-only bind of %s at /run/x.sock", mounts, sock)
	}
	if binds := dockerOK(t, "inspect", "--format", "{{json .HostConfig.Binds}}", "hostsock"); !strings.Contains(binds, sock+":/run/x.sock:ro") {
		t.Errorf("HostConfig.Binds %s: want %s:/run/x.sock:ro", binds, sock)
	}
	if r := skiff(t, "run", "--rm", "-v", sock+":/s", "-v", bin+":/se:ro", "busybox", "/se/sockclient", "/s", "three"); r.code != 0 || r.stdout != "echo:three" {
		t.Errorf("skiff run with a host socket: %s, want echo:three", r)
	}
	if n := conns.Load(); n != 5 {
		t.Errorf("the host socket had %d connections, want 5", n)
	}

	// A symbolic link put in the socket's place after create (to another socket): start refuses it.
	sock2 := filepath.Join(dir, "b.sock")
	l2, err := net.Listen("unix", sock2)
	if err != nil {
		t.Fatal(err)
	}
	dockerOK(t, "create", "--name", "hostsock2", "-v", sock2+":/s", "busybox", "true")
	defer docker(t, "rm", "-f", "hostsock2")
	l2.Close() // removes sock2
	if err := os.Symlink(sock, sock2); err != nil {
		t.Fatal(err)
	}
	if r := docker(t, "start", "hostsock2"); r.code == 0 || !strings.Contains(r.stderr, "now resolves to "+sock) {
		t.Errorf("docker start with a link in place of the socket: %s, want a refusal", r)
	}

	fifo := filepath.Join(dir, "fifo") // neither a socket nor a folder or regular file (a file is a single-file bind)
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for src, want := range map[string]string{filepath.Join(dir, "none.sock"): "does not exist", fifo: "neither a folder nor a regular file"} {
		r := docker(t, "run", "--rm", "-v", src+":/s", "busybox", "true")
		if r.code == 0 || !strings.Contains(r.stderr, src) || !strings.Contains(r.stderr, want) {
			t.Errorf("docker run -v %s: %s, want a refusal saying %q", src, r, want)
		}
	}
}
