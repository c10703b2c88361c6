//go:build linux

package engine

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/skiff-containers/skiff/backend/images"
	"github.com/skiff-containers/skiff/internal/testutil"
)

// A container created before disks (a record with a root directory, no disks) keeps working in a
// real VM under the engine's user: after the engine (re)opens its data dir it starts from that
// directory shared over virtiofs, sees what it wrote before, and what it writes now lands in the same
// directory on the host, belonging to the engine's user; it survives a stop/start. The host-process
// test (TestContainerFromBeforeDisksKeepsItsRootHostproc) proves the engine's part as root.
func TestContainerFromBeforeDisksQEMU(t *testing.T) {
	cfg, host, _ := qemuConfig(t)
	cfg.WarmUp = false
	ctx := ctxT(t, 15*time.Minute)
	e, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { e.Close(context.Background()) }()
	ref := host + "/busybox:latest"
	if _, err := e.Pull(ctx, ref, images.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	rec := Container{ID: NewID(), Name: "old", State: StateExited, Created: time.Now().UTC(), Image: ref,
		Config: CreateOptions{Image: ref, Restart: RestartPolicy{Name: "no"}},
		Process: Process{Args: []string{"sh", "-c", "cat /data/written; echo again >> /data/written; echo new > /data/new; id -u"},
			Env: []string{"PATH=" + DefaultPath}, WorkingDir: "/", Hostname: "old"},
	}
	rec.RootFS = filepath.Join(e.containerDir(rec.ID), "rootfs")
	rec.LogPath = filepath.Join(e.logDir(rec.ID), logFileName)
	if err := testutil.WriteBusyboxRootfs(rec.RootFS); err != nil {
		t.Skipf("busybox rootfs: %v", err)
	}
	written := filepath.Join(rec.RootFS, "data", "written")
	if err := os.MkdirAll(filepath.Dir(written), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(written, []byte("kept from before\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(e.logDir(rec.ID), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := e.saveRecord(&rec); err != nil {
		t.Fatal(err)
	}
	// The engine finds it when it opens, as after an upgrade.
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if e, err = Open(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, e: e}
	want := "kept from before\n"
	for run := 1; run <= 2; run++ {
		if err := e.Start(ctx, rec.ID); err != nil {
			console, _ := os.ReadFile(e.consolePath(rec.ID))
			t.Fatalf("start %d: %v\nconsole:\n%s", run, err, console)
		}
		if code := f.wait(rec.ID); code != 0 {
			out, errs := f.logs(rec.ID)
			t.Fatalf("run %d exited %d:\n%s\n%s", run, code, out, errs)
		}
		want += "again\n"
		b, err := os.ReadFile(written)
		if err != nil || string(b) != want {
			t.Fatalf("run %d: the host's /data/written is %q, %v; want %q", run, b, err, want)
		}
	}
	out, _ := f.logs(rec.ID)
	if want := "kept from before\n0\nkept from before\nagain\n0\n"; out != want {
		t.Errorf("output %q, want %q (the old file, then the guest root)", out, want)
	}
	fi, err := os.Stat(filepath.Join(rec.RootFS, "data", "new"))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != os.Getuid() {
		t.Errorf("a file the guest's root made is %d's on the host, not the engine's user's (%d)", st.Uid, os.Getuid())
	}
}
