package engine

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// TestProxyHalfClose: each side's EOF reaches the other as a half-close, and the other direction
// keeps flowing until it ends too.
func TestProxyHalfClose(t *testing.T) {
	// client ⇄ [front listener] ⇄ proxy ⇄ [back listener] ⇄ server
	front, _ := net.Listen("tcp", "127.0.0.1:0")
	back, _ := net.Listen("tcp", "127.0.0.1:0")
	defer front.Close()
	defer back.Close()
	go func() {
		a, err := front.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", back.Addr().String())
		if err != nil {
			a.Close()
			return
		}
		proxy(a, b)
	}()
	serverDone := make(chan error, 1)
	go func() {
		s, err := back.Accept()
		if err != nil {
			serverDone <- err
			return
		}
		defer s.Close()
		req, err := io.ReadAll(s) // until the client's half-close arrives
		if err != nil {
			serverDone <- err
			return
		}
		time.Sleep(50 * time.Millisecond) // the reply comes after the client stopped writing
		_, err = s.Write(append([]byte("got "), req...))
		serverDone <- err
	}()
	c, err := net.Dial("tcp", front.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	reply, err := io.ReadAll(c)
	if err != nil || string(reply) != "got request" {
		t.Fatalf("reply %q, %v", reply, err)
	}
	if err := <-serverDone; err != nil {
		t.Fatal(err)
	}
}

func TestListenPortsReleasesOnFailure(t *testing.T) {
	taken, _ := net.Listen("tcp", "127.0.0.1:0")
	defer taken.Close()
	free := freeTCPPort(t)
	_, _, err := listenPorts([]PortMapping{
		{HostIP: "127.0.0.1", HostPort: free, ContainerPort: 80, Proto: "tcp"},
		{HostIP: "127.0.0.1", HostPort: taken.Addr().(*net.TCPAddr).Port, ContainerPort: 81, Proto: "tcp"},
	})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("taken port: %v, want ErrConflict", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(free)))
	if err != nil {
		t.Fatalf("the first port was not released after the second failed: %v", err)
	}
	ln.Close()
	lns, bound, err := listenPorts([]PortMapping{{HostIP: "127.0.0.1", ContainerPort: 80, Proto: "tcp"}})
	if err != nil || bound[0].HostPort == 0 {
		t.Fatalf("port 0: %+v %v", bound, err)
	}
	lns[0].Close()
}

func freeTCPPort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestMachineSpec(t *testing.T) {
	e := &Engine{home: "/data", cfg: Config{}}
	id := NewID()
	src, cfg := t.TempDir(), t.TempDir()
	c := &ctr{e: e, rec: Container{ID: id, Platform: "linux/arm64", RootFS: "/data/containers/" + id + "/rootfs",
		MAC: macFor(id), Process: Process{Hostname: "web"},
		Config: CreateOptions{CPUs: 1.5, Memory: 1 << 30},
		Mounts: []Mount{{Source: src, Target: "/app"}, {Source: cfg, Target: "/etc/cfg", ReadOnly: true}}}}
	spec, err := c.machineSpec(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if spec.ID != id || spec.Arch != "arm64" || spec.CPUs != 2 || spec.MemoryMiB != 1024 || spec.Network.MAC != macFor(id) {
		t.Errorf("spec %+v", spec)
	}
	if len(spec.Shares) != 3 || spec.Shares[0].Tag != "rootfs" || spec.Shares[0].HostPath != c.rec.RootFS ||
		spec.Shares[2].Tag != "v1" || !spec.Shares[2].ReadOnly || spec.Shares[1].HostPath != src {
		t.Errorf("shares %+v", spec.Shares)
	}
	if spec.Boot.Hostname != "web" || len(spec.Cmdline) != 0 || len(spec.StateDir) > len("/data/run/")+12 {
		t.Errorf("boot %+v cmdline %q state dir %q", spec.Boot, spec.Cmdline, spec.StateDir)
	}
	c.rec.Config = CreateOptions{}
	spec, _ = c.machineSpec(context.Background())
	if spec.CPUs != min(runtime.NumCPU(), defaultMaxCPUs) || spec.MemoryMiB != 512 {
		t.Errorf("defaults: %d CPUs, %d MiB", spec.CPUs, spec.MemoryMiB)
	}
}
