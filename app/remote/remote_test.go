package remote_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/app"
	"github.com/skiff-containers/skiff/app/apptest"
	"github.com/skiff-containers/skiff/app/bridge"
	"github.com/skiff-containers/skiff/app/remote"
)

// The remote backend behind the services behaves as the backend it forwards to (over a real socket).
func TestRemoteBackend(t *testing.T) {
	dir, _ := os.MkdirTemp("", "skiff-remote-")
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, bridge.SocketName)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := bridge.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	fake := apptest.NewFake()
	go bridge.NewServer(fake).Serve(ctx, l, "")
	cl, err := bridge.Dial(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	b := remote.New(cl, dir)

	var progress []app.Progress
	spec, _ := app.ParseRunRequest(app.RunRequest{Image: "busybox", Name: "r", Cmd: []string{"sleep"}, Ports: []string{"80"}})
	c, err := b.CreateContainer(ctx, spec, func(p app.Progress) { progress = append(progress, p) })
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "r" || len(c.Ports) != 1 || c.Ports[0].ContainerPort != 80 {
		t.Errorf("created %+v", c)
	}
	if len(progress) == 0 || progress[len(progress)-1].Status != "done" {
		t.Errorf("progress %+v", progress)
	}
	if err := b.StartContainer(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	fake.AddLogs(c.ID, 100, 20)
	logs, err := b.Logs(ctx, "r", app.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for batch := range logs {
		n += len(batch)
	}
	if n != 100 {
		t.Errorf("%d log lines, want 100", n)
	}
	st, err := b.Exec(ctx, "r", app.ExecRequest{Cmd: []string{"cat"}, Interactive: true})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(st.Stdin(), "over two hops\n")
	st.Stdin().Close()
	out, _ := io.ReadAll(st.Stdout())
	if code, err := st.Wait(); code != 0 || err != nil || string(out) != "over two hops\n" {
		t.Errorf("exec: %q, %d, %v", out, code, err)
	}
	if _, err := b.InspectContainer(ctx, "nope"); app.CodeOf(err) != app.CodeNotFound {
		t.Errorf("inspect of a missing container: %v", err)
	}
	r, err := b.ConsoleLog(ctx, "r", false)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(r)
	if !strings.Contains(string(text), "skiff-agent") {
		t.Errorf("console %q", text)
	}
	if err := b.StopContainer(ctx, "r", nil); err != nil {
		t.Fatal(err)
	}
	if code, err := b.WaitContainer(ctx, "r"); code != 143 || err != nil {
		t.Errorf("wait: %d %v", code, err)
	}
}
