package docker_test

import (
	"strings"
	"testing"
)

// Named volumes through the docker CLI: written in one container, read in another, kept after
// both are removed, refused removal while in use; a new volume filled from the
// image; anonymous volumes go with `rm -v`; tmpfs mounts.
func TestVolumeRoundTrip(t *testing.T) {
	need(t)
	loadBusybox(t)
	dockerOK(t, "volume", "create", "--label", "suite=docker", "vrt")
	if out := dockerOK(t, "volume", "ls", "--filter", "label=suite=docker", "--format", "{{.Name}} {{.Driver}}"); strings.TrimSpace(out) != "vrt local" {
		t.Fatalf("volume ls --filter label: %q", out)
	}
	dockerOK(t, "run", "--rm", "-v", "vrt:/data", "busybox", "sh", "-c", "echo kept > /data/f")
	if out := dockerOK(t, "run", "--name", "vrt-reader", "--mount", "type=volume,src=vrt,dst=/mnt,readonly", "busybox", "cat", "/mnt/f"); out != "kept\n" {
		t.Errorf("read in another container: %q", out)
	}
	if r := docker(t, "volume", "rm", "vrt"); r.code == 0 || !strings.Contains(r.stderr, "in use") {
		t.Errorf("volume rm of a volume in use: %s", r)
	}
	if out := dockerOK(t, "inspect", "--format", "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.RW}}{{end}}", "vrt-reader"); strings.TrimSpace(out) != "volume vrt /mnt false" {
		t.Errorf("inspect .Mounts: %q", out)
	}
	dockerOK(t, "rm", "-v", "vrt-reader") // a named volume stays
	if out := dockerOK(t, "run", "--rm", "-v", "vrt:/data", "busybox", "cat", "/data/f"); out != "kept\n" {
		t.Errorf("after the containers were removed: %q", out)
	}
	// A new volume gets the image's content at its path (filled in the guest): busybox in /bin,
	// executable, seen by another container; a volume with content keeps it and gets nothing.
	if out := dockerOK(t, "run", "--rm", "-v", "vrt-fill:/bin", "busybox", "ls", "/bin/busybox"); out != "/bin/busybox\n" {
		t.Errorf("a new volume over /bin: %q", out)
	}
	out := dockerOK(t, "run", "--rm", "-v", "vrt-fill:/mnt", "busybox", "sh", "-c", "ls -l /mnt/busybox /mnt/sh && /mnt/busybox echo ran")
	if !strings.HasSuffix(out, "ran\n") || !strings.Contains(out, "-rwx") || !strings.Contains(out, "/mnt/sh -> ") {
		t.Errorf("the filled volume in another container: %q", out)
	}
	if out := dockerOK(t, "run", "--rm", "-v", "vrt:/home", "busybox", "ls", "/home"); out != "f\n" {
		t.Errorf("a volume with content over /home: %q, want only its own f", out)
	}
	if out := dockerOK(t, "run", "--rm", "--mount", "type=volume,src=vrt-nocopy,dst=/home,volume-nocopy", "busybox", "ls", "/home"); out != "" {
		t.Errorf("a volume-nocopy volume over /home: %q, want it empty", out)
	}
	// Modes and owners are kept: the volume is a disk of its own.
	if out := dockerOK(t, "run", "--rm", "-v", "vrt-own:/home", "busybox", "stat", "-c", "%u:%g %a", "/home/app"); out != "1000:1000 755\n" {
		t.Errorf("the owner and mode of /home/app in a filled volume: %q, want 1000:1000 755", out)
	}
	// A new volume mounted read-only is filled all the same, and stays read-only in the container.
	if r := docker(t, "run", "--rm", "-v", "vrt-ro:/home:ro", "busybox", "sh", "-c", "ls /home; touch /home/x"); r.code == 0 ||
		r.stdout != "app\n" || !strings.Contains(r.stderr, "Read-only") {
		t.Errorf("a new read-only volume over /home: %s (want app listed and the write refused)", r)
	}
	dockerOK(t, "volume", "rm", "vrt-fill", "vrt-nocopy", "vrt-own", "vrt-ro")

	dockerOK(t, "volume", "rm", "vrt")
	if r := docker(t, "volume", "inspect", "vrt"); r.code == 0 || !strings.Contains(r.stderr, "no such volume") {
		t.Errorf("volume inspect of a removed volume: %s", r)
	}

	// -v /path: an anonymous volume, removed by rm -v.
	dockerOK(t, "run", "--name", "vrt-anon", "-v", "/cache", "busybox", "sh", "-c", "echo x > /cache/y")
	anon := strings.TrimSpace(dockerOK(t, "inspect", "--format", "{{range .Mounts}}{{.Name}}{{end}}", "vrt-anon"))
	if len(anon) != 64 {
		t.Fatalf("anonymous volume name %q", anon)
	}
	dockerOK(t, "volume", "inspect", anon)
	dockerOK(t, "rm", "-v", "vrt-anon")
	if r := docker(t, "volume", "inspect", anon); r.code == 0 {
		t.Errorf("the anonymous volume outlived rm -v: %s", r)
	}

	// --tmpfs is a tmpfs in the guest, with its size.
	out = dockerOK(t, "run", "--rm", "--tmpfs", "/scratch:size=1m", "busybox", "sh", "-c", "grep ' /scratch ' /proc/mounts")
	if !strings.Contains(out, "tmpfs /scratch tmpfs") || !strings.Contains(out, "size=1024k") {
		t.Errorf("tmpfs mount: %q", out)
	}

	// prune -a removes unused volumes.
	dockerOK(t, "volume", "create", "vrt-unused")
	if out := dockerOK(t, "volume", "prune", "-a", "-f"); !strings.Contains(out, "vrt-unused") {
		t.Errorf("volume prune: %q", out)
	}
}
