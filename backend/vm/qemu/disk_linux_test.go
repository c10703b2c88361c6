package qemu_test

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/skiff-containers/skiff/backend/agentproto"
	"github.com/skiff-containers/skiff/backend/images/disk"
	"github.com/skiff-containers/skiff/backend/vm"
	"github.com/skiff-containers/skiff/backend/vm/qemu"
	"github.com/skiff-containers/skiff/internal/testutil"
)

// diskImage builds the image disk of a busybox image with files owned by
// 0, 70 and 1000 (backend/images/disk) in dir.
func diskImage(t *testing.T, ctx context.Context, dir string) string {
	t.Helper()
	debs, err := testutil.DebsDir()
	if err != nil {
		t.Skipf("test images: %v (run `make setup`)", err)
	}
	img, err := testutil.BuildBusyboxImage(debs, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var b testutil.TarBuilder
	b.Dir("var/lib", 0o755)
	b.Add(&tar.Header{Name: "var/lib/pg/", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 70, Gid: 70}, nil)
	b.Add(&tar.Header{Name: "var/lib/pg/PG_VERSION", Typeflag: tar.TypeReg, Mode: 0o600, Uid: 70, Gid: 70}, []byte("15\n"))
	b.Add(&tar.Header{Name: "home/app/secret", Typeflag: tar.TypeReg, Mode: 0o600, Uid: 1000, Gid: 50}, []byte("s3cret"))
	b.Add(&tar.Header{Name: "usr/bin/su", Typeflag: tar.TypeReg, Mode: 0o4755}, []byte("su"))
	b.Add(&tar.Header{Name: "usr/bin/su2", Typeflag: tar.TypeLink, Linkname: "usr/bin/su"}, nil)
	l, err := b.Layer()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "image.ext4")
	if err := disk.Build(ctx, append(append([]v1.Layer(nil), layers...), l), p, disk.Options{}); err != nil {
		t.Fatal(err)
	}
	return p
}

// upperDisk makes an empty ext4 file system of 256 MiB, sparse.
func upperDisk(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "upper.ext4")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, 256<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", p).CombinedOutput(); err != nil {
		t.Skipf("mkfs.ext4 (e2fsprogs): %v: %s", err, out)
	}
	return p
}

func sha(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestDiskRoot: a container root from an image disk and an upper disk,
// in a VM booted cold and in one restored from its shape's boot snapshot.
// Each sees the image's files with their owners and modes through the
// overlay; what one writes is there for the next VM on the same disks; the
// image disk's bytes never change.
func TestDiskRoot(t *testing.T) {
	cache := t.TempDir()
	cold := newEnv(t, "amd64", func(o *qemu.Options) { o.NoSnapshots = true })
	snap := newEnv(t, "amd64", func(o *qemu.Options) { o.CacheDir = cache })
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	dir := t.TempDir()
	image, upper := diskImage(t, ctx, dir), upperDisk(t, dir)
	imageSum := sha(t, image)
	spec := func(e *env, name string) vm.MachineSpec {
		s := e.spec(t, name)
		s.Boot.Root = agentproto.RootFromDisks
		s.Disks = []vm.Disk{{ID: agentproto.ImageDiskID, Path: image, ReadOnly: true}, {ID: agentproto.UpperDiskID, Path: upper}}
		return s
	}
	// run starts a VM of e on the disks, runs script and stops the VM
	// gracefully; it returns the script's output and the console log.
	run := func(t *testing.T, e *env, name, script string) (string, string) {
		t.Helper()
		s := spec(e, name)
		m, c := e.start(t, ctx, s)
		p, err := c.Run(ctx, agentproto.ProcessSpec{Args: []string{"sh", "-c", script}})
		if err != nil {
			t.Fatal(err)
		}
		out, errOut, code := output(t, p)
		p.Close()
		if code != 0 {
			t.Fatalf("%s: exit %d: %s%s", script, code, out, errOut)
		}
		if err := vm.Shutdown(ctx, m, nil); err != nil {
			t.Fatal(err)
		}
		console, _ := os.ReadFile(s.ConsoleLog)
		noLeftovers(t, s.StateDir)
		// A graceful stop leaves the upper disk clean, its writes in place:
		// no journal to replay, no count e2fsck would fix.
		fsck, err := exec.Command("e2fsck", "-fn", upper).CombinedOutput()
		if err != nil || strings.Contains(string(fsck), "journal") || strings.Contains(string(fsck), "Fix?") {
			t.Errorf("e2fsck -fn of the upper disk after a graceful stop: %v\n%s", err, fsck)
		}
		return out, string(console)
	}
	const look = "stat -c '%u:%g %a %n' /var/lib/pg /var/lib/pg/PG_VERSION /home/app/secret /usr/bin/su /bin/busybox; " +
		"[ $(stat -c %i /usr/bin/su) = $(stat -c %i /usr/bin/su2) ] && echo linked; " +
		"grep ' / ' /proc/mounts | cut -d' ' -f1,3; "
	want := "70:70 750 /var/lib/pg\n70:70 600 /var/lib/pg/PG_VERSION\n1000:50 600 /home/app/secret\n" +
		"0:0 4755 /usr/bin/su\n0:0 755 /bin/busybox\nlinked\noverlay overlay\n"

	t.Run("cold boot", func(t *testing.T) {
		out, console := run(t, cold, "disk-cold", look+"echo cold > /home/app/cold.txt; chown 1000 /home/app/cold.txt; sync")
		if out != want {
			t.Errorf("through the overlay:\n%s\nwant:\n%s", out, want)
		}
		if strings.Contains(console, "restored from boot snapshot") {
			t.Error("the cold VM was restored")
		}
	})
	t.Run("restored", func(t *testing.T) {
		out, console := run(t, snap, "disk-restored", look+"cat /home/app/cold.txt; stat -c %u /home/app/cold.txt; echo restored > /restored.txt")
		if w := want + "cold\n1000\n"; out != w {
			t.Errorf("through the overlay:\n%s\nwant:\n%s", out, w)
		}
		if !strings.Contains(console, "restored from boot snapshot") {
			t.Errorf("not restored; console:\n%s", console)
		}
		// The template holds no container's disk: its qemu had none.
		metas, _ := filepath.Glob(filepath.Join(cache, "snapshots", "*", "console.log"))
		if len(metas) != 1 {
			t.Fatalf("snapshots: %q", metas)
		}
		tmpl, _ := os.ReadFile(metas[0])
		if strings.Contains(string(tmpl), "virtio_blk virtio") || strings.Contains(string(tmpl), "vda") {
			t.Errorf("the template saw a disk:\n%s", tmpl)
		}
	})
	t.Run("restored with shares", func(t *testing.T) {
		// A share on the command line (hp0), the disks after it (hp1, hp2),
		// then one hot-plugged while it runs (hp3).
		data, more := t.TempDir(), t.TempDir()
		os.WriteFile(filepath.Join(data, "d.txt"), []byte("data\n"), 0o644)
		os.WriteFile(filepath.Join(more, "m.txt"), []byte("more\n"), 0o644)
		s := spec(snap, "disk-shares")
		s.Shares = []vm.Share{{Tag: "data", HostPath: data}}
		m, c := snap.start(t, ctx, s)
		sa, ok := m.(vm.ShareAdder)
		if !ok {
			t.Fatal("a restored machine is no ShareAdder")
		}
		if n := sa.FreeShareSlots(); n != 6 {
			t.Fatalf("free share slots with a share and two disks: %d, want 6 of 9", n)
		}
		if err := sa.AddShare(ctx, vm.Share{Tag: "more", HostPath: more}); err != nil {
			t.Fatal(err)
		}
		for tag, target := range map[string]string{"data": "/data", "more": "/more"} {
			if err := c.Mount(ctx, agentproto.MountSpec{Tag: tag, Target: target}); err != nil {
				t.Fatal(err)
			}
		}
		p, err := c.Run(ctx, agentproto.ProcessSpec{Args: []string{"cat", "/data/d.txt", "/more/m.txt", "/restored.txt"}})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if out, errOut, code := output(t, p); out != "data\nmore\nrestored\n" || code != 0 {
			t.Errorf("shares and the disk root read %q (exit %d, %s)", out, code, errOut)
		}
		vm.Shutdown(ctx, m, nil)
	})
	t.Run("the writes stay", func(t *testing.T) {
		out, _ := run(t, snap, "disk-again", "cat /home/app/cold.txt /restored.txt")
		if out != "cold\nrestored\n" {
			t.Errorf("a new VM on the same disks reads %q", out)
		}
		if got := sha(t, image); got != imageSum {
			t.Errorf("the image disk changed: %s, was %s", got, imageSum)
		}
	})
}

// TestDiskRootMissing: a disk that is not there, or not attached, is an
// error naming it.
func TestDiskRootMissing(t *testing.T) {
	cold := newEnv(t, "amd64", func(o *qemu.Options) { o.NoSnapshots = true })
	snap := newEnv(t, "amd64", func(o *qemu.Options) { o.CacheDir = t.TempDir() })
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	dir := t.TempDir()
	upper := upperDisk(t, dir)

	t.Run("no file", func(t *testing.T) {
		s := cold.spec(t, "disk-nofile")
		s.Boot.Root = agentproto.RootFromDisks
		s.Disks = []vm.Disk{{ID: agentproto.ImageDiskID, Path: filepath.Join(dir, "gone.ext4"), ReadOnly: true}}
		m, err := cold.hv.Start(ctx, s)
		if err == nil {
			m.Stop(ctx, true)
			t.Fatal("started with a missing disk file")
		}
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), `disk "skiff-image"`) {
			t.Errorf("error %v: want one naming disk \"skiff-image\" and wrapping fs.ErrNotExist", err)
		}
		noLeftovers(t, s.StateDir)
	})
	for _, e := range []struct {
		name     string
		env      *env
		restored bool
	}{{"not attached, cold", cold, false}, {"not attached, restored", snap, true}} {
		t.Run(e.name, func(t *testing.T) {
			s := e.env.spec(t, "disk-unattached")
			s.Boot.Root = agentproto.RootFromDisks
			s.Disks = []vm.Disk{{ID: agentproto.UpperDiskID, Path: upper}} // no image disk
			m, err := e.env.hv.Start(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Stop(ctx, true)
			select {
			case <-m.Done():
			case <-ctx.Done():
				t.Fatal("the VM without its image disk did not end")
			}
			console, _ := os.ReadFile(s.ConsoleLog)
			if !strings.Contains(string(console), `disk \"skiff-image\" is not attached`) {
				t.Errorf("console does not name the missing disk:\n%s", vm.ConsoleTail(s.ConsoleLog, 15))
			}
			if r := strings.Contains(string(console), "restored from boot snapshot"); r != e.restored {
				t.Errorf("restored %v, want %v", r, e.restored)
			}
			if err := m.Err(); err == nil || !strings.Contains(err.Error(), "skiff-image") {
				t.Errorf("the machine's error %v does not name the missing disk", err)
			}
		})
	}
}

// TestDiskInUse: the image disk serves two VMs at once; an upper disk
// another VM writes is refused, naming it, with nothing left behind, and a
// restored VM's refusal keeps its shape's boot snapshot.
func TestDiskInUse(t *testing.T) {
	cache := t.TempDir()
	cold := newEnv(t, "amd64", func(o *qemu.Options) { o.NoSnapshots = true })
	snap := newEnv(t, "amd64", func(o *qemu.Options) { o.CacheDir = cache })
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	dir := t.TempDir()
	image, upper := diskImage(t, ctx, dir), upperDisk(t, dir)
	spec := func(e *env, name, upper string) vm.MachineSpec {
		s := e.spec(t, name)
		s.Boot.Root = agentproto.RootFromDisks
		s.Disks = []vm.Disk{{ID: agentproto.ImageDiskID, Path: image, ReadOnly: true}, {ID: agentproto.UpperDiskID, Path: upper}}
		return s
	}
	cat := func(t *testing.T, c *agentproto.Client) string {
		t.Helper()
		p, err := c.Run(ctx, agentproto.ProcessSpec{Args: []string{"cat", "/var/lib/pg/PG_VERSION"}})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		out, _, _ := output(t, p)
		return out
	}
	_, a := snap.start(t, ctx, spec(snap, "disk-a", upper))
	if got := cat(t, a); got != "15\n" {
		t.Fatalf("first VM reads %q", got)
	}
	_, b := snap.start(t, ctx, spec(snap, "disk-b", upperDisk(t, t.TempDir())))
	if got := cat(t, b); got != "15\n" {
		t.Fatalf("a second VM on the same image disk reads %q", got)
	}
	for _, e := range []struct {
		name string
		env  *env
	}{{"restored", snap}, {"cold", cold}} {
		t.Run(e.name, func(t *testing.T) {
			s := spec(e.env, "disk-"+e.name, upper)
			m, err := e.env.hv.Start(ctx, s)
			if err == nil {
				m.Stop(ctx, true)
				t.Fatal("a second VM started on an upper disk in use")
			}
			if !strings.Contains(err.Error(), upper) || !strings.Contains(err.Error(), "lock") {
				t.Errorf("error %v: want one naming %s and its lock", err, upper)
			}
			t.Logf("refused: %v", err)
			noMachineLeft(t, s)
		})
	}
	if metas, _ := filepath.Glob(filepath.Join(cache, "snapshots", "*", "meta.json")); len(metas) != 1 {
		t.Errorf("boot snapshots after a refused disk: %q", metas)
	}
	if got := cat(t, a); got != "15\n" {
		t.Errorf("the first VM after the refusals reads %q", got)
	}
}

// noMachineLeft: no process of s's machine (qemu's -name skiff-<ID>), no
// pid file or socket in its state dir; other machines may run.
func noMachineLeft(t testing.TB, s vm.MachineSpec) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var left []string
		cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, c := range cmdlines {
			b, _ := os.ReadFile(c)
			if strings.Contains(string(b), "\x00skiff-"+s.ID+"\x00") {
				left = append(left, strings.ReplaceAll(string(b), "\x00", " "))
			}
		}
		files, _ := filepath.Glob(filepath.Join(s.StateDir, "*.pid"))
		socks, _ := filepath.Glob(filepath.Join(s.StateDir, "*.sock"))
		if len(left)+len(files)+len(socks) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("leftovers of %s: processes %q, pid files %q, sockets %q", s.ID, left, files, socks)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
