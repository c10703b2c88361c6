package client_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/app"
	"github.com/skiff-containers/skiff/app/apptest"
	"github.com/skiff-containers/skiff/app/bridge"
	"github.com/skiff-containers/skiff/app/client"
)

// dial serves a fake engine on a real socket and connects the typed client to it; the engine
// serves until the context ends.
func dial(t *testing.T) (*client.Client, *apptest.Fake, context.Context) {
	cl, fake, ctx, _ := dialStop(t)
	return cl, fake, ctx
}

func dialStop(t *testing.T) (*client.Client, *apptest.Fake, context.Context, context.CancelFunc) {
	t.Helper()
	dir, err := os.MkdirTemp("", "skiff-client-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	sock := filepath.Join(dir, bridge.SocketName)
	l, err := bridge.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	fake := apptest.NewFake()
	tl := &trackingListener{Listener: l}
	go bridge.NewServer(fake).Serve(ctx, tl, "")
	cl, err := client.Dial(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	stop := func() { // the engine's end of every connection goes, as when its process dies
		tl.mu.Lock()
		for _, c := range tl.conns {
			c.Close()
		}
		tl.mu.Unlock()
		<-cl.Done()
	}
	return cl, fake, ctx, stop
}

// trackingListener remembers the connections it accepted.
type trackingListener struct {
	net.Listener
	mu    sync.Mutex // guards conns
	conns []net.Conn
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

// Calls, progress, a log stream to its end, a session both ways and error codes, through a real socket.
func TestClient(t *testing.T) {
	cl, fake, ctx := dial(t)
	pid := client.NewProgressID()
	progress := cl.Progress(pid)
	c, err := cl.Containers.Create(ctx, app.RunRequest{Image: "busybox", Name: "r", Cmd: []string{"sleep"}, Ports: []string{"80"}, ProgressID: pid})
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "r" || len(c.Ports) != 1 || c.Ports[0].ContainerPort != 80 {
		t.Errorf("created %+v", c)
	}
	p, ok, err := progress.Next(ctx)
	if !ok || err != nil || p.Phase == "" {
		t.Errorf("progress: %+v %v %v", p, ok, err)
	}
	progress.Close(ctx)
	if err := cl.Containers.Start(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	fake.AddLogs(c.ID, 100, 20)
	logs, err := cl.Containers.SubscribeLogs(ctx, "r", app.LogQuery{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		batch, ok, err := logs.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		n += len(batch)
	}
	if n != 100 {
		t.Errorf("%d log lines, want 100", n)
	}
	s, err := cl.Containers.ExecStart(ctx, "r", app.ExecRequest{Cmd: []string{"cat"}, Interactive: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, []byte("over the socket\n")); err != nil {
		t.Fatal(err)
	}
	if err := s.CloseInput(ctx); err != nil {
		t.Fatal(err)
	}
	var out []byte
	for {
		o, err := s.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if o.Exit != nil {
			if o.Exit.Code != 0 {
				t.Errorf("exit %+v", o.Exit)
			}
			break
		}
		out = append(out, o.Data...)
	}
	if string(out) != "over the socket\n" {
		t.Errorf("exec output %q", out)
	}
	if _, err := cl.Containers.Inspect(ctx, "nope"); app.CodeOf(err) != app.CodeNotFound {
		t.Errorf("inspect of a missing container: %v", err)
	}
	if err := cl.Containers.Stop(ctx, "r", -1); err != nil {
		t.Fatal(err)
	}
	if code, err := cl.Containers.Wait(ctx, "r"); code != 143 || err != nil {
		t.Errorf("wait: %d %v", code, err)
	}
	if v, err := cl.System.Version(ctx); err != nil || v.API != app.APIVersion {
		t.Errorf("version %+v %v", v, err)
	}
}

// A stream whose connection is lost says so (an error), unlike one that ended (ok false, no error).
func TestStreamLostConnection(t *testing.T) {
	cl, _, ctx, stop := dialStop(t)
	if _, err := cl.Containers.Create(ctx, app.RunRequest{Image: "busybox", Name: "r", Cmd: []string{"sleep"}}); err != nil {
		t.Fatal(err)
	}
	if err := cl.Containers.Start(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	stats, err := cl.Containers.SubscribeStats(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := stats.Next(ctx); !ok || err != nil {
		t.Fatalf("first sample: %v %v", ok, err)
	}
	stop()
	for {
		_, ok, err := stats.Next(ctx)
		if ok {
			continue // samples queued before the loss
		}
		if !errors.Is(err, bridge.ErrClosed) {
			t.Errorf("after the engine went: %v, want bridge.ErrClosed", err)
		}
		break
	}
}
