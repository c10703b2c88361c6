//go:build linux

package engine

import (
	"archive/tar"
	"context"
	"errors"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/skiff-containers/skiff/internal/testutil"
)

// ownersImage is busybox plus a layer whose files belong to 0, 70 and 1000 (a uid-70 data dir of
// mode 0750, a file 1000:50 of mode 0600, a setuid-root program, a hard link), with USER 70.
func ownersImage(t *testing.T, host string) string {
	t.Helper()
	var b testutil.TarBuilder
	b.Add(&tar.Header{Name: "data/", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 70, Gid: 70}, nil)
	b.Add(&tar.Header{Name: "data/secret", Typeflag: tar.TypeReg, Mode: 0o600, Uid: 1000, Gid: 50}, []byte("s3cret\n"))
	b.Add(&tar.Header{Name: "suidtool", Typeflag: tar.TypeReg, Mode: 0o4755}, []byte("#!/bin/sh\n"))
	b.Add(&tar.Header{Name: "hard1", Typeflag: tar.TypeReg, Mode: 0o644, Uid: 1000, Gid: 1000}, []byte("linked\n"))
	b.Add(&tar.Header{Name: "hard2", Typeflag: tar.TypeLink, Linkname: "hard1"}, nil)
	layer, err := b.Layer()
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(testutil.BusyboxImages(t).BusyboxAMD64, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config.User = "70"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	ref := host + "/owners:latest"
	if err := testutil.PushImage(context.Background(), ref, img); err != nil {
		t.Fatal(err)
	}
	return ref
}

// The container's root is the image's disk under its own writable disk, in a real VM: the
// workload runs as the image's USER 70, sees every owner and mode as the layers say, writes into its
// own data dir, and that write survives stop/start and an engine restart; the writable disk has the
// size asked for; rm removes it and rmi the image's disk.
func TestDiskRootQEMU(t *testing.T) {
	cfg, host, _ := qemuConfig(t)
	cfg.WarmUp = false // cold boots: no snapshot build competing for the CPU
	e, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { e.Close(context.Background()) }()
	ref := ownersImage(t, host)
	ctx := ctxT(t, 15*time.Minute)
	script := `id -u; stat -c '%u:%g %a %n' / /data /data/secret /suidtool /hard1 /hard2 /bin/busybox; ` +
		`ls -i /hard1 /hard2; cat /data/copied 2>/dev/null; echo run >> /data/log && echo "lines=$(wc -l < /data/log)"; df -k / | tail -n 1`
	c, err := e.Create(ctx, CreateOptions{Image: ref, Cmd: []string{"sh", "-c", script}, StorageSize: 2 << 30})
	if err != nil {
		t.Fatal(err)
	}
	run := func(e *Engine, n int) string {
		t.Helper()
		if err := e.Start(ctx, c.ID); err != nil {
			console, _ := os.ReadFile(e.consolePath(c.ID))
			t.Fatalf("start %d: %v\nconsole:\n%s", n, err, console)
		}
		f := &fixture{t: t, e: e}
		if code := f.wait(c.ID); code != 0 {
			out, errs := f.logs(c.ID)
			t.Fatalf("run %d exited %d:\n%s\n%s", n, code, out, errs)
		}
		out, errs := f.logs(c.ID)
		if errs != "" {
			t.Errorf("run %d stderr: %s", n, errs)
		}
		// The log holds every run; this one's output is its last.
		runs := strings.SplitAfter(out, "lines=")
		if got := runs[len(runs)-1]; !strings.HasPrefix(got, strconv.Itoa(n)+"\n") {
			t.Errorf("run %d: its write to /data/log is line %q, want %d (earlier writes lost?)\n%s", n, got, n, out)
		}
		return out
	}
	out := run(e, 1)
	t.Logf("first run:\n%s", out)
	if !strings.HasPrefix(out, "70\n") {
		t.Errorf("the workload runs as %q, want uid 70", strings.SplitN(out, "\n", 2)[0])
	}
	for _, want := range []string{"0:0 755 /\n", "70:70 750 /data\n", "1000:50 600 /data/secret\n", "0:0 4755 /suidtool\n",
		"1000:1000 644 /hard1\n", "1000:1000 644 /hard2\n", "0:0 755 /bin/busybox\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("stat lacks %q", want)
		}
	}
	if m := regexp.MustCompile(`(\d+) /hard1\s+(\d+) /hard2`).FindStringSubmatch(out); m == nil || m[1] != m[2] {
		t.Errorf("/hard1 and /hard2 are not one inode: %v", m)
	}
	// df of the root: the writable disk's size (2 GiB, less the filesystem's own metadata).
	if m := regexp.MustCompile(`(?m)^\S+\s+(\d+)\s+\d+\s+\d+\s+\d+%\s+/$`).FindStringSubmatch(out); m == nil {
		t.Errorf("no df line for /")
	} else if kb, _ := strconv.ParseInt(m[1], 10, 64); kb < 1900<<10 || kb > 2<<20 {
		t.Errorf("the root is %d KiB, want about 2 GiB (--storage-opt size=2G)", kb)
	}

	run(e, 2) // stop/start: the workload exited, its VM is gone; a new VM sees the same disk

	// An engine restart: a new engine on the same data dir.
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if e, err = Open(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	run(e, 3)

	// docker cp on the stopped container: a short-lived VM of its disks.
	if err := e.CopyTo(ctx, c.ID, "/data", tarOf(t, entry{name: "copied", typ: tar.TypeReg, body: "copied in\n"}), CopyToOptions{}); err != nil {
		t.Fatalf("cp into the stopped container: %v", err)
	}
	rc, st, err := e.CopyFrom(ctx, c.ID, "/data/log")
	if err != nil {
		t.Fatalf("cp from the stopped container: %v", err)
	}
	if got := cpAll(t, rc); got["log"] != "run\nrun\nrun\n" || st.Size != 12 {
		t.Errorf("cp of /data/log: %q (stat %+v)", got, st)
	}
	if out := run(e, 4); !strings.Contains(out, "\ncopied in\nlines=4") {
		t.Errorf("the workload does not see the file copied in while it was stopped:\n%s", out)
	}

	got, err := e.Inspect(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Remove(ctx, c.ID, RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(got.UpperDisk); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("rm left the writable disk: %v", err)
	}
	if _, err := os.Stat(got.ImageDisk); err != nil {
		t.Fatalf("the image's disk: %v", err)
	}
	if err := e.Images().Remove(ctx, ref, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(got.ImageDisk); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("rmi left the image's disk: %v", err)
	}
}
