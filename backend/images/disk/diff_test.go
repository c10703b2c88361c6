package disk_test

import (
	"crypto/sha256"
	"fmt"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/skiff-containers/skiff/backend/images"
	"github.com/skiff-containers/skiff/internal/testutil"
)

// The disk and the store's unpacker agree: the same image pulled into a store and built into a disk
// gives the same names, types, modes, owners, sizes, contents, symlink targets, device numbers and
// hard-link groups. Owners are compared as root only: unprivileged, the unpacker writes them to its
// owners file, by entry name, which cannot stand in for them (a name reached through a symlinked
// parent is recorded unresolved, a hard link's names not at all, implicit parents belong to the
// unpacking user), the gap the disk closes. The device nodes it recorded there are compared.
func TestDiskMatchesTheUnpacker(t *testing.T) {
	needE2fsprogs(t)
	imgs := map[string]v1.Image{"owners": imageOf(t, ownersLayers(t))}
	if dir, err := testutil.DebsDir(); err == nil {
		ml, err := testutil.BuildMultilayer(dir)
		if err != nil {
			t.Fatal(err)
		}
		imgs["multilayer"] = ml
	} else {
		t.Logf("multilayer image skipped: %v", err)
	}
	srv := httptest.NewServer(testutil.RegistryHandler())
	t.Cleanup(srv.Close)
	host := srv.Listener.Addr().String()
	s, err := images.Open(t.TempDir(), images.WithPlatform("linux/amd64"))
	if err != nil {
		t.Fatal(err)
	}
	for name, img := range imgs {
		t.Run(name, func(t *testing.T) {
			ctx := ctxT(t)
			ref := host + "/" + name + ":latest"
			if err := testutil.PushImage(ctx, ref, img); err != nil {
				t.Fatal(err)
			}
			got, err := s.Pull(ctx, ref, images.PullOptions{})
			if err != nil {
				t.Fatal(err)
			}
			layers, err := img.Layers()
			if err != nil {
				t.Fatal(err)
			}
			dst := build(t, layers)
			owners := os.Geteuid() == 0
			want, wantLinks := dirTree(t, got.RootFS, owners)
			have, haveLinks := diskTree(t, dst, owners)
			for p, w := range want {
				if h, ok := have[p]; !ok {
					t.Errorf("%s: unpacked (%s), not in the disk", p, w)
				} else if h != w {
					t.Errorf("%s: disk %s, unpacked %s", p, h, w)
				}
			}
			for p, h := range have {
				if _, ok := want[p]; !ok {
					t.Errorf("%s: in the disk (%s), not unpacked", p, h)
				}
			}
			if !reflect.DeepEqual(haveLinks, wantLinks) {
				t.Errorf("hard links: disk %v, unpacked %v", haveLinks, wantLinks)
			}
		})
	}
}

// imageOf makes a linux/amd64 image of layers.
func imageOf(t *testing.T, layers []v1.Layer) v1.Image {
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

// describe is the comparable summary of one name: type, permission bits (with setuid, setgid,
// sticky), owner when asked, and what the type carries.
func describe(mode uint32, uid, gid int, owners bool, extra string) string {
	s := fmt.Sprintf("%o %04o", mode>>12, mode&0o7777)
	if mode>>12 == 0o12 {
		s = fmt.Sprintf("%o", mode>>12) // a symlink's mode is whatever the filesystem says
	}
	if owners {
		s += fmt.Sprintf(" %d:%d", uid, gid)
	}
	return s + " " + extra
}

// linkGroups lists the names sharing an inode, each group sorted, groups sorted.
func linkGroups(byIno map[uint64][]string) []string {
	var out []string
	for _, names := range byIno {
		if len(names) > 1 {
			sort.Strings(names)
			out = append(out, strings.Join(names, " = "))
		}
	}
	sort.Strings(out)
	return out
}

// dirTree describes every name under root (an unpacked rootfs), with the device nodes its owners
// file records.
func dirTree(t *testing.T, root string, owners bool) (map[string]string, []string) {
	recorded := ownersFile(t, filepath.Join(filepath.Dir(root), "owners"))
	out := map[string]string{}
	byIno := map[uint64][]string{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == root {
			return err
		}
		rel := "/" + strings.TrimPrefix(p, root+"/")
		st := fi.Sys().(*syscall.Stat_t)
		extra := ""
		switch uint32(st.Mode) >> 12 {
		case 0o10:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			extra = fmt.Sprintf("%d %x", len(b), hashOf(b))
			byIno[uint64(st.Ino)] = append(byIno[uint64(st.Ino)], rel)
		case 0o12:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			extra = "-> " + l
		case 0o2, 0o6:
			extra = fmt.Sprintf("%d:%d", uint64(st.Rdev)>>8&0xfff, uint64(st.Rdev)&0xff)
		}
		out[rel] = describe(uint32(st.Mode), int(st.Uid), int(st.Gid), owners, extra)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for p, r := range recorded {
		if r.typ == "c" || r.typ == "b" { // device nodes the unpacker could not make
			typ := uint32(0o2)
			if r.typ == "b" {
				typ = 0o6
			}
			out[p] = describe(typ<<12|r.mode, r.uid, r.gid, owners, r.dev)
		}
	}
	return out, linkGroups(byIno)
}

type recordedOwner struct {
	typ      string
	uid, gid int
	mode     uint32
	dev      string
}

// ownersFile reads the unpacker's owners file (images/owners.go): "<type> <uid> <gid> <mode octal>
// <major> <minor> <quoted path>" per line; absent when the unpacker could apply everything.
func ownersFile(t *testing.T, p string) map[string]recordedOwner {
	out := map[string]recordedOwner{}
	b, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return out
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.SplitN(line, " ", 7)
		if len(f) != 7 {
			t.Fatalf("owners file line %q", line)
		}
		name, err := strconv.Unquote(f[6])
		if err != nil {
			t.Fatalf("owners file line %q: %v", line, err)
		}
		uid, _ := strconv.Atoi(f[1])
		gid, _ := strconv.Atoi(f[2])
		mode, _ := strconv.ParseUint(f[3], 8, 32)
		out[name] = recordedOwner{typ: f[0], uid: uid, gid: gid, mode: uint32(mode), dev: f[4] + ":" + f[5]}
	}
	return out
}

// diskTree describes every name in an ext4 image, read with debugfs (lost+found, which every ext4
// has, left out).
func diskTree(t *testing.T, img string, owners bool) (map[string]string, []string) {
	out := map[string]string{}
	byIno := map[uint64][]string{}
	dirs := []string{"/"}
	for len(dirs) > 0 {
		dir := dirs[0]
		dirs = dirs[1:]
		var special []string // symlinks and devices: their stat, in one debugfs run per directory
		modes := map[string]uint32{}
		owner := map[string][2]int{}
		for _, line := range strings.Split(debugfs(t, img, "ls -p "+dir), "\n") {
			// /ino/mode/uid/gid/name/size/ (ino 0: the unused end of a directory block)
			f := strings.Split(line, "/")
			if len(f) < 7 || f[1] == "0" || f[5] == "." || f[5] == ".." || (dir == "/" && f[5] == "lost+found") {
				continue
			}
			ino, _ := strconv.ParseUint(f[1], 10, 64)
			mode, _ := strconv.ParseUint(f[2], 8, 32)
			uid, _ := strconv.Atoi(f[3])
			gid, _ := strconv.Atoi(f[4])
			p := path.Join(dir, f[5])
			switch mode >> 12 {
			case 0o4:
				dirs = append(dirs, p)
				out[p] = describe(uint32(mode), uid, gid, owners, "")
			case 0o10:
				b := []byte(cat(t, img, p))
				out[p] = describe(uint32(mode), uid, gid, owners, fmt.Sprintf("%d %x", len(b), hashOf(b)))
				byIno[ino] = append(byIno[ino], p)
			default:
				special = append(special, p)
				modes[p], owner[p] = uint32(mode), [2]int{uid, gid}
			}
		}
		for i, st := range debugfsBatch(t, img, "stat", special) {
			p := special[i]
			extra := ""
			switch modes[p] >> 12 {
			case 0o12:
				m := reTarget.FindStringSubmatch(st)
				if m == nil {
					t.Fatalf("%s: no symlink target in %q", p, st)
				}
				extra = "-> " + m[1]
			case 0o2, 0o6:
				m := reDev.FindStringSubmatch(st)
				if m == nil {
					t.Fatalf("%s: no device number in %q", p, st)
				}
				maj, _ := strconv.Atoi(m[1])
				mnr, _ := strconv.Atoi(m[2])
				extra = fmt.Sprintf("%d:%d", maj, mnr)
			}
			out[p] = describe(modes[p], owner[p][0], owner[p][1], owners, extra)
		}
	}
	return out, linkGroups(byIno)
}

func hashOf(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:8]
}
