package engine

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// echoSocket serves a unix socket at path that answers each connection with tag and what it read.
func echoSocket(t *testing.T, path, tag string) {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, _ := io.ReadAll(c)
				c.Write(append([]byte(tag+":"), b...))
			}()
		}
	}()
}

func askSocket(t *testing.T, real string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := dialPinnedSocket(ctx, real)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.Write([]byte("hi"))
	c.(*net.UnixConn).CloseWrite()
	b, err := io.ReadAll(c)
	return string(b), err
}

// TestSocketBindsPinned: a bind mount of a host unix socket is moved out of the shared folders
// into SocketBinds with its source pinned (links resolved); each connection reaches that socket
// and nothing else: a symbolic link put in its place (to another socket) or a file instead of it
// is refused, by the start check and by the connection itself. A missing source or a plain file
// stays a bind mount, and validateMounts names what is wrong with it.
func TestSocketBindsPinned(t *testing.T) {
	dir, err := os.MkdirTemp("", "sk") // short: sun_path
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Mkdir(filepath.Join(dir, "real"), 0o700)
	os.Symlink("real", filepath.Join(dir, "link"))
	sock := filepath.Join(dir, "real", "a.sock")
	other := filepath.Join(dir, "other.sock")
	echoSocket(t, sock, "a")
	echoSocket(t, other, "other")
	plain := filepath.Join(dir, "file")
	os.WriteFile(plain, []byte("x"), 0o600)

	e := &Engine{}
	o := CreateOptions{Mounts: []Mount{
		{Source: filepath.Join(dir, "link", "a.sock"), Target: "/ssh-agent/"},
		{Source: dir, Target: "/d"},
	}}
	if err := e.splitSockets(&o); err != nil {
		t.Fatal(err)
	}
	if len(o.Mounts) != 1 || o.Mounts[0].Target != "/d" || len(o.SocketBinds) != 1 {
		t.Fatalf("mounts %+v socket binds %+v: want the folder a mount and the socket a socket bind", o.Mounts, o.SocketBinds)
	}
	b := o.SocketBinds[0]
	if b.Real != sock || b.Target != "/ssh-agent" || b.Docker {
		t.Fatalf("socket bind %+v: want Real %s, Target /ssh-agent", b, sock)
	}
	if err := checkSocketBinds(o.SocketBinds); err != nil {
		t.Fatal(err)
	}
	if got, err := askSocket(t, b.Real); err != nil || got != "a:hi" {
		t.Fatalf("through the pinned socket: %q %v, want a:hi", got, err)
	}

	// The socket swapped for a link to another socket: refused at start and at each connection.
	os.Rename(sock, sock+".away")
	if err := os.Symlink(other, sock); err != nil {
		t.Fatal(err)
	}
	if err := checkSocketBinds(o.SocketBinds); !errors.Is(err, ErrInvalid) {
		t.Errorf("start check with a link in place of the socket: %v, want ErrInvalid", err)
	}
	if got, err := askSocket(t, b.Real); err == nil || strings.Contains(got, "other") {
		t.Errorf("connection with a link in place of the socket: %q %v, want refused", got, err)
	}
	// The directory on the way swapped for a link: refused too.
	os.Remove(sock)
	os.Rename(sock+".away", sock)
	os.Rename(filepath.Join(dir, "real"), filepath.Join(dir, "real2"))
	os.Symlink("real2", filepath.Join(dir, "real"))
	if err := checkSocketBinds(o.SocketBinds); !errors.Is(err, ErrInvalid) {
		t.Errorf("start check with a link on the way: %v, want ErrInvalid", err)
	}
	if got, err := askSocket(t, b.Real); err == nil {
		t.Errorf("connection with a link on the way: %q, want refused", got)
	}
	// A plain file in its place.
	os.Remove(filepath.Join(dir, "real"))
	os.Mkdir(filepath.Join(dir, "real"), 0o700)
	os.WriteFile(sock, nil, 0o600)
	if err := checkSocketBinds(o.SocketBinds); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "no longer a unix socket") {
		t.Errorf("start check with a file in place of the socket: %v", err)
	}
	if _, err := askSocket(t, b.Real); err == nil || !strings.Contains(err.Error(), "no longer a unix socket") {
		t.Errorf("connection with a file in place of the socket: %v", err)
	}

	// Not sockets: left to validateMounts, which names the problem.
	fifo := filepath.Join(dir, "fifo") // a plain file is a single-file bind, not refused
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for src, want := range map[string]string{filepath.Join(dir, "none.sock"): "does not exist", fifo: "neither a folder nor a regular file"} {
		o := CreateOptions{Mounts: []Mount{{Source: src, Target: "/x"}}}
		if err := e.splitSockets(&o); err != nil || len(o.SocketBinds) != 0 {
			t.Fatalf("%s: %v %+v", src, err, o.SocketBinds)
		}
		if err := validateMounts(o.Mounts); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", src, err, want)
		}
	}
	// Two sockets at one target.
	o = CreateOptions{Mounts: []Mount{{Source: other, Target: "/s"}, {Source: other, Target: "/s/"}}}
	if err := e.splitSockets(&o); !errors.Is(err, ErrInvalid) {
		t.Errorf("one target twice: %v", err)
	}
}
