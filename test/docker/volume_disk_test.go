package docker_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A volume is a disk of its own (an ext4 image attached to the container's VM): chown works in it,
// as every database image's entrypoint needs, and another container later sees those owners and
// modes; the data outlives the container; a second running container that wants it is refused,
// naming the volume and the holder and saying how to share one; read-only users share one none
// writes; a shared-folder volume (--opt shared=true) serves two running containers at once; docker
// cp reaches a volume of a container that does not run.
func TestVolumeDisk(t *testing.T) {
	need(t)
	loadBusybox(t)
	defer docker(t, "rm", "-f", "vdk-a", "vdk-holder", "vdk-r1", "vsh-a", "vdk-cp")
	defer docker(t, "volume", "rm", "-f", "vdk", "vsh", "vdk-cpv")
	dockerOK(t, "volume", "create", "--opt", "size=1G", "vdk")
	out := dockerOK(t, "volume", "inspect", "--format", "{{.Options.size}} {{.Mountpoint}} {{.Status.Storage}}", "vdk")
	if f := strings.Fields(out); len(f) < 3 || f[0] != "1G" || !strings.HasSuffix(f[1], ".ext4") || f[2] != "disk:" {
		t.Errorf("volume inspect: %q, want size 1G, an ext4 image as mountpoint and the storage said", out)
	}
	if r := docker(t, "volume", "create", "--opt", "type=nfs", "vdk-bad"); r.code == 0 || !strings.Contains(r.stderr, `"type"`) {
		t.Errorf("volume create with an unknown option: %s", r)
	}

	// chown to 999 (postgres, mysql, redis) and 1000, as root: kept, with the modes.
	dockerOK(t, "run", "--name", "vdk-a", "-v", "vdk:/data", "busybox", "sh", "-ec",
		"mkdir /data/pg /data/my; chown 999:999 /data/pg; chmod 700 /data/pg; echo x > /data/my/f; chown -R 1000:1000 /data/my; chmod 640 /data/my/f")
	dockerOK(t, "rm", "vdk-a")
	// The guest left the file system clean at its VM's shutdown (remounted read-only): no journal to
	// replay (a read-only user mounts it with noload), nothing to fix.
	mp := strings.TrimSpace(dockerOK(t, "volume", "inspect", "--format", "{{.Mountpoint}}", "vdk"))
	if _, err := os.Stat("/usr/sbin/dumpe2fs"); err == nil {
		out, err := exec.Command("/usr/sbin/dumpe2fs", "-h", mp).CombinedOutput()
		if err != nil || strings.Contains(string(out), "needs_recovery") || !strings.Contains(string(out), "Filesystem state:         clean") {
			t.Errorf("dumpe2fs -h of the volume after its container stopped: %v\n%s", err, out)
		}
		if out, err := exec.Command("/usr/sbin/e2fsck", "-fn", mp).CombinedOutput(); err != nil {
			t.Errorf("e2fsck -fn of the volume after its container stopped: %v\n%s", err, out)
		}
	}
	out = dockerOK(t, "run", "--rm", "-v", "vdk:/d", "busybox", "stat", "-c", "%u:%g %a %n", "/d/pg", "/d/my", "/d/my/f")
	if want := "999:999 700 /d/pg\n1000:1000 755 /d/my\n1000:1000 640 /d/my/f\n"; out != want {
		t.Errorf("owners and modes in another container: %q, want %q", out, want)
	}
	if out := dockerOK(t, "run", "--rm", "-v", "vdk:/d", "busybox", "ls", "-A", "/d"); out != "my\npg\n" {
		t.Errorf("the volume's content: %q (no lost+found wanted)", out)
	}
	// A user other than root writes where the owner lets it.
	if out := dockerOK(t, "run", "--rm", "-u", "999", "-v", "vdk:/d", "busybox", "sh", "-c", "echo pg > /d/pg/v && cat /d/pg/v"); out != "pg\n" {
		t.Errorf("user 999 in its directory: %q", out)
	}

	// One volume at two targets of a container: one disk, bound twice.
	if out := dockerOK(t, "run", "--rm", "-v", "vdk:/a", "-v", "vdk:/b:ro", "busybox", "sh", "-c", "echo t > /a/t; cat /b/t; rm /a/t"); out != "t\n" {
		t.Errorf("a volume at two targets: %q", out)
	}

	// A second running container is refused while one runs with it.
	dockerOK(t, "run", "-d", "--name", "vdk-holder", "-v", "vdk:/data", "busybox", "sleep", "600")
	for _, v := range []string{"vdk:/data", "vdk:/data:ro"} {
		r := docker(t, "run", "--rm", "-v", v, "busybox", "true")
		if r.code == 0 || !strings.Contains(r.stderr, `volume "vdk"`) || !strings.Contains(r.stderr, "vdk-holder") ||
			!strings.Contains(r.stderr, "shared=true") {
			t.Errorf("a second running container on -v %s: %s", v, r)
		}
	}
	dockerOK(t, "rm", "-f", "vdk-holder")
	// Read-only users share it while none writes.
	dockerOK(t, "run", "-d", "--name", "vdk-r1", "-v", "vdk:/data:ro", "busybox", "sleep", "600")
	if out := dockerOK(t, "run", "--rm", "-v", "vdk:/data:ro", "busybox", "cat", "/data/my/f"); out != "x\n" {
		t.Errorf("a second read-only user: %q", out)
	}
	if r := docker(t, "run", "--rm", "-v", "vdk:/data", "busybox", "true"); r.code == 0 || !strings.Contains(r.stderr, "vdk-r1") {
		t.Errorf("a writer while a reader runs: %s", r)
	}
	dockerOK(t, "rm", "-f", "vdk-r1")

	// A shared-folder volume: two running containers at once.
	dockerOK(t, "volume", "create", "--opt", "shared=true", "vsh")
	dockerOK(t, "run", "-d", "--name", "vsh-a", "-v", "vsh:/s", "busybox", "sh", "-c", "echo a > /s/a; sleep 600")
	out = dockerOK(t, "run", "--rm", "-v", "vsh:/s", "busybox", "sh", "-c",
		"for i in $(seq 100); do [ -f /s/a ] && break; sleep 0.1; done; cat /s/a; echo b > /s/b")
	if out != "a\n" {
		t.Errorf("the shared volume in a second running container: %q", out)
	}
	if out := dockerOK(t, "exec", "vsh-a", "cat", "/s/b"); out != "b\n" {
		t.Errorf("the first container reads the second's file: %q", out)
	}

	// docker cp into and out of a volume of a created (never started) container.
	dockerOK(t, "create", "--name", "vdk-cp", "-v", "vdk-cpv:/data", "busybox", "true")
	src := filepath.Join(t.TempDir(), "in.txt")
	if err := os.WriteFile(src, []byte("copied\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dockerOK(t, "cp", src, "vdk-cp:/data/in.txt")
	dst := filepath.Join(t.TempDir(), "out.txt")
	dockerOK(t, "cp", "vdk-cp:/data/in.txt", dst)
	if b, err := os.ReadFile(dst); err != nil || string(b) != "copied\n" {
		t.Errorf("docker cp out of the volume: %q, %v", b, err)
	}
	dockerOK(t, "rm", "vdk-cp")
	if out := dockerOK(t, "run", "--rm", "-v", "vdk-cpv:/d", "busybox", "cat", "/d/in.txt"); out != "copied\n" {
		t.Errorf("what docker cp put into the volume, in a container: %q", out)
	}

	// rm deletes the image.
	dockerOK(t, "volume", "rm", "vdk")
	if _, err := os.Stat(mp); !os.IsNotExist(err) {
		t.Errorf("the volume's image after volume rm: %v", err)
	}
}
