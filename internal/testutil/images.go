package testutil

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/pgzip"
)

// Test images, built from Debian's busybox-static .debs (scripts/fetch-debs.sh puts them in
// _build/debs; SKIFF_DEBS overrides the directory):
//
//   - busybox: an OCI index for linux/amd64 and linux/arm64/v8. One layer: /bin/busybox and a
//     symlink per applet (/bin/sh …), /usr/bin/env, /etc/passwd (root, app 1000, nobody),
//     /etc/group (as BusyboxRootfs's: staff 50 with app), /tmp (1777), /root, /home/app (owned
//     by 1000), /proc /sys /dev /run mount points.
//     Config: Cmd ["sh"], Env PATH, label dev.skiff.test=busybox.
//   - multilayer (linux/amd64): the busybox layer plus three layers that delete and replace files
//     across layers (whiteouts, an opaque directory, hardlinks, symlinks, a fifo, a device node);
//     MultilayerExpect describes the resulting tree.
//   - BuildLarge: an image of any size with several layers of random, compressible files.

// FixtureTime is the mtime of every file in the test images and their creation time: the images are
// reproducible, byte for byte.
var FixtureTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// Images are the test images, built in memory.
type Images struct {
	Busybox      v1.ImageIndex // linux/amd64 + linux/arm64/v8
	BusyboxAMD64 v1.Image
	BusyboxARM64 v1.Image
	Multilayer   v1.Image // linux/amd64
}

// BusyboxImages builds the test images, skipping the test when the .debs are missing (`make setup`
// fetches them).
func BusyboxImages(t testing.TB) *Images {
	t.Helper()
	dir, err := DebsDir()
	if err != nil {
		t.Skipf("test images: %v (run `make setup`, which runs scripts/fetch-debs.sh)", err)
	}
	imgs, err := BuildImages(dir)
	if err != nil {
		t.Fatalf("building test images: %v", err)
	}
	return imgs
}

// DebsDir returns the directory holding busybox-static_*_{amd64,arm64}.deb: $SKIFF_DEBS, else
// _build/debs at the module root (found from the working directory).
func DebsDir() (string, error) {
	dir := os.Getenv("SKIFF_DEBS")
	if dir == "" {
		root, err := moduleRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, "_build", "debs")
	}
	for _, arch := range []string{"amd64", "arm64"} {
		if _, err := findDeb(dir, arch); err != nil {
			return "", err
		}
	}
	return dir, nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

func findDeb(dir, arch string) (string, error) {
	m, _ := filepath.Glob(filepath.Join(dir, "busybox-static_*_"+arch+".deb"))
	if len(m) == 0 {
		return "", fmt.Errorf("no busybox-static .deb for %s in %s", arch, dir)
	}
	sort.Strings(m)
	return m[len(m)-1], nil
}

// BuildImages builds every test image from the .debs in debDir.
func BuildImages(debDir string) (*Images, error) {
	var imgs Images
	var err error
	if imgs.BusyboxAMD64, err = BuildBusyboxImage(debDir, "amd64"); err != nil {
		return nil, err
	}
	if imgs.BusyboxARM64, err = BuildBusyboxImage(debDir, "arm64"); err != nil {
		return nil, err
	}
	imgs.Busybox = mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: imgs.BusyboxAMD64, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: imgs.BusyboxARM64, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)
	if imgs.Multilayer, err = BuildMultilayer(debDir); err != nil {
		return nil, err
	}
	return &imgs, nil
}

// busyboxBinary extracts /bin/busybox from the .deb for arch (with dpkg-deb).
func busyboxBinary(debDir, arch string) ([]byte, error) {
	deb, err := findDeb(debDir, arch)
	if err != nil {
		return nil, err
	}
	out, err := exec.Command("dpkg-deb", "--fsys-tarfile", deb).Output()
	if err != nil {
		return nil, fmt.Errorf("dpkg-deb --fsys-tarfile %s: %w", deb, err)
	}
	tr := tar.NewReader(bytes.NewReader(out))
	for {
		h, err := tr.Next()
		if err != nil {
			return nil, fmt.Errorf("no bin/busybox in %s: %v", deb, err)
		}
		if strings.TrimPrefix(h.Name, "./") == "bin/busybox" {
			return io.ReadAll(tr)
		}
	}
}

// Applets are the busybox applets the test images link in /bin (Debian 12's busybox-static).
var Applets = strings.Fields(`[ [[ acpid adjtimex ar arch arp arping ascii ash awk base64 basename bc
blkdiscard blockdev brctl bunzip2 bzcat bzip2 cal cat chgrp chmod chown chroot chvt clear cmp cp cpio
crc32 crond crontab cttyhack cut date dc dd deallocvt depmod devmem df diff dirname dmesg dnsdomainname
dos2unix dpkg dpkg-deb du dumpkmap dumpleases echo ed egrep env expand expr factor fallocate false
fatattr fdisk fgrep find findfs fold free freeramdisk fsfreeze fstrim ftpget ftpput getopt getty grep
groups gunzip gzip halt head hexdump hostid hostname httpd hwclock i2cdetect i2cdump i2cget i2cset
i2ctransfer id ifconfig ifdown ifup init insmod ionice ip ipcalc ipneigh kill killall klogd last less
link linux32 linux64 linuxrc ln loadfont loadkmap logger login logname logread losetup ls lsmod lsscsi
lzcat lzma lzop md5sum mdev microcom mim mkdir mkdosfs mke2fs mkfifo mknod mkpasswd mkswap mktemp
modinfo modprobe more mount mt mv nameif nc netstat nl nologin nproc nsenter nslookup nuke od openvt
partprobe passwd paste patch pidof ping ping6 pivot_root poweroff printf ps pwd rdate readlink realpath
reboot renice reset resume rev rm rmdir rmmod route rpm rpm2cpio run-init run-parts sed seq setkeycodes
setpriv setsid sh sha1sum sha256sum sha3sum sha512sum shred shuf sleep sort ssl_client
start-stop-daemon stat strings stty su sulogin svc svok swapoff swapon switch_root sync sysctl syslogd
tac tail tar taskset tc tee telnet telnetd test tftp time timeout top touch tr traceroute traceroute6
true truncate ts tty tunctl ubirename udhcpc udhcpd uevent umount uname uncompress unexpand uniq
unix2dos unlink unlzma unshare unxz unzip uptime usleep uudecode uuencode vconfig vi w watch watchdog
wc wget which who whoami xargs xxd xz xzcat yes zcat`)

// Passwd and Group are /etc/passwd and /etc/group of the busybox image.
const (
	Passwd = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
	Group  = "root:x:0:\ntty:x:5:\nstaff:x:50:app\napp:x:1000:\nnogroup:x:65534:\n"
	// ImagePathEnv is the PATH in the busybox image's config.
	ImagePathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// busyboxLayer is the single layer of the busybox image for arch.
func busyboxLayer(debDir, arch string) (v1.Layer, error) {
	bin, err := busyboxBinary(debDir, arch)
	if err != nil {
		return nil, err
	}
	var tb TarBuilder
	for _, d := range []string{"bin", "dev", "etc", "home", "proc", "run", "sys", "usr", "usr/bin", "var"} {
		tb.Dir(d, 0o755)
	}
	tb.Dir("root", 0o700)
	tb.Dir("tmp", 0o1777)
	tb.Dir("var/tmp", 0o1777)
	tb.Add(&tar.Header{Name: "home/app/", Typeflag: tar.TypeDir, Mode: 0o755, Uid: 1000, Gid: 1000}, nil)
	tb.File("bin/busybox", 0o755, bin)
	for _, a := range Applets {
		tb.Symlink("bin/"+a, "busybox")
	}
	tb.Symlink("usr/bin/env", "/bin/busybox")
	tb.File("etc/passwd", 0o644, []byte(Passwd))
	tb.File("etc/group", 0o644, []byte(Group))
	tb.File("etc/hostname", 0o644, []byte("busybox\n"))
	return tb.Layer()
}

// BuildBusyboxImage builds the busybox image for one architecture ("amd64" or "arm64").
func BuildBusyboxImage(debDir, arch string) (v1.Image, error) {
	l, err := busyboxLayer(debDir, arch)
	if err != nil {
		return nil, err
	}
	variant := ""
	if arch == "arm64" {
		variant = "v8"
	}
	return imageOf(arch, variant, v1.Config{
		Cmd: []string{"sh"}, Env: []string{ImagePathEnv},
		Labels: map[string]string{"dev.skiff.test": "busybox", "org.opencontainers.image.title": "busybox"},
	}, l)
}

// imageOf makes an OCI image from layers and a config.
func imageOf(arch, variant string, cfg v1.Config, layers ...v1.Layer) (v1.Image, error) {
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(img, layers...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = "linux", arch, variant
	cf.Created = v1.Time{Time: FixtureTime}
	cf.Config = cfg
	cf.History = nil
	return mutate.ConfigFile(img, cf)
}

// TarBuilder builds a layer tarball in memory, entries in the order added, all with FixtureTime.
// Tests use it to craft layers (including hostile ones: names are written as given).
type TarBuilder struct {
	buf bytes.Buffer
	tw  *tar.Writer
	err error
}

// Add writes one entry; hdr.ModTime defaults to FixtureTime and Size to len(data).
func (b *TarBuilder) Add(hdr *tar.Header, data []byte) {
	if b.tw == nil {
		b.tw = tar.NewWriter(&b.buf)
	}
	if b.err != nil {
		return
	}
	if hdr.ModTime.IsZero() {
		hdr.ModTime = FixtureTime
	}
	hdr.Size = int64(len(data))
	if hdr.Typeflag != tar.TypeReg {
		hdr.Size = 0
	}
	hdr.Format = tar.FormatPAX
	if b.err = b.tw.WriteHeader(hdr); b.err == nil && len(data) > 0 {
		_, b.err = b.tw.Write(data)
	}
}

// Dir adds a directory.
func (b *TarBuilder) Dir(name string, mode int64) {
	b.Add(&tar.Header{Name: strings.TrimSuffix(name, "/") + "/", Typeflag: tar.TypeDir, Mode: mode}, nil)
}

// File adds a regular file owned by root.
func (b *TarBuilder) File(name string, mode int64, data []byte) {
	b.Add(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode}, data)
}

// Symlink adds a symlink.
func (b *TarBuilder) Symlink(name, target string) {
	b.Add(&tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}, nil)
}

// Tar returns the uncompressed tarball.
func (b *TarBuilder) Tar() ([]byte, error) {
	if b.tw == nil {
		b.tw = tar.NewWriter(&b.buf)
	}
	if b.err != nil {
		return nil, b.err
	}
	if err := b.tw.Close(); err != nil {
		return nil, err
	}
	return b.buf.Bytes(), nil
}

// Layer returns the tarball as a gzip-compressed OCI layer.
func (b *TarBuilder) Layer() (v1.Layer, error) {
	raw, err := b.Tar()
	if err != nil {
		return nil, err
	}
	return GzipLayer(raw)
}

// GzipLayer compresses an uncompressed tarball into an OCI layer (in parallel for large ones; the
// output is deterministic).
func GzipLayer(tarball_ []byte) (v1.Layer, error) {
	var z bytes.Buffer
	var w io.WriteCloser
	if len(tarball_) > 8<<20 {
		pw := pgzip.NewWriter(&z)
		pw.SetConcurrency(1<<20, 4)
		w = pw
	} else {
		w = gzip.NewWriter(&z)
	}
	if _, err := w.Write(tarball_); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	compressed := z.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(compressed)), nil
	}, tarball.WithMediaType(types.OCILayer))
}
