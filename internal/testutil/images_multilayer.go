package testutil

import (
	"archive/tar"
	"fmt"
	"math/rand"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// MultilayerExpect is the tree the multilayer image unpacks to, beyond the busybox base: path → what
// must be there ("" absent, "dir", "fifo", "chardev 1 3", "symlink <target>", "hardlink <path>", or
// "file <content>"). Paths are relative to the rootfs.
var MultilayerExpect = map[string]string{
	"data/a":                    "",
	"data/b":                    "file b2",
	"data/c":                    "",
	"data/c2":                   "file c2",
	"data/dir-becomes-file":     "file now a file",
	"data/dir-becomes-file/x":   "",
	"data/file-becomes-dir":     "dir",
	"data/file-becomes-dir/in":  "file inner",
	"data/hl":                   "hardlink data/b",
	"data/hl2":                  "hardlink bin/busybox",
	"data/sl":                   "symlink b",
	"data/abs":                  "symlink /etc/passwd",
	"data/fifo":                 "fifo",
	"data/null":                 "chardev 1 3",
	"data/owned":                "file owned by app",
	"opq":                       "dir",
	"opq/new":                   "file new",
	"opq/x":                     "",
	"opq/y":                     "",
	"opq/sub":                   "",
	"gone":                      "",
	"replace-me":                "file v2",
	"keep/deep/file":            "file kept",
	"implicit/parent/of/a/file": "file no parent entries",
}

// BuildMultilayer builds the multilayer image (linux/amd64).
func BuildMultilayer(debDir string) (v1.Image, error) {
	base, err := busyboxLayer(debDir, "amd64")
	if err != nil {
		return nil, err
	}
	var l1 TarBuilder
	l1.Dir("data", 0o755)
	l1.File("data/a", 0o644, []byte("a1"))
	l1.File("data/b", 0o644, []byte("b1"))
	l1.File("data/c", 0o644, []byte("c1"))
	l1.Dir("data/dir-becomes-file", 0o755)
	l1.File("data/dir-becomes-file/x", 0o644, []byte("x"))
	l1.File("data/file-becomes-dir", 0o644, []byte("f"))
	l1.Dir("opq", 0o755)
	l1.File("opq/x", 0o644, []byte("x"))
	l1.File("opq/y", 0o644, []byte("y"))
	l1.Dir("opq/sub", 0o755)
	l1.File("opq/sub/z", 0o644, []byte("z"))
	l1.Dir("gone", 0o755)
	l1.Dir("gone/deep", 0o755)
	l1.File("gone/deep/file", 0o644, []byte("gone"))
	l1.File("replace-me", 0o644, []byte("v1"))
	l1.Dir("keep", 0o755)
	l1.Dir("keep/deep", 0o755)
	l1.File("keep/deep/file", 0o644, []byte("kept"))
	l1.Add(&tar.Header{Name: "data/fifo", Typeflag: tar.TypeFifo, Mode: 0o644}, nil)
	layer1, err := l1.Layer()
	if err != nil {
		return nil, err
	}

	var l2 TarBuilder
	l2.Dir("data", 0o755)
	l2.File("data/.wh.a", 0o644, nil)
	l2.File("data/b", 0o644, []byte("b2"))
	l2.File("data/dir-becomes-file", 0o644, []byte("now a file"))
	l2.Dir("data/file-becomes-dir", 0o755)
	l2.File("data/file-becomes-dir/in", 0o644, []byte("inner"))
	l2.Add(&tar.Header{Name: "data/hl", Typeflag: tar.TypeLink, Linkname: "data/b"}, nil)
	l2.Symlink("data/sl", "b")
	l2.Symlink("data/abs", "/etc/passwd")
	l2.Add(&tar.Header{Name: "data/owned", Typeflag: tar.TypeReg, Mode: 0o4750, Uid: 1000, Gid: 1000},
		[]byte("owned by app"))
	l2.Dir("opq", 0o755)
	l2.File("opq/.wh..wh..opq", 0o644, nil)
	l2.File("opq/new", 0o644, []byte("new"))
	l2.File(".wh.gone", 0o644, nil)
	l2.File("replace-me", 0o600, []byte("v2"))
	layer2, err := l2.Layer()
	if err != nil {
		return nil, err
	}

	var l3 TarBuilder
	l3.File("data/.wh.c", 0o644, nil)
	l3.File("data/c2", 0o644, []byte("c2"))
	l3.Add(&tar.Header{Name: "data/hl2", Typeflag: tar.TypeLink, Linkname: "bin/busybox"}, nil)
	l3.Add(&tar.Header{Name: "data/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3}, nil)
	l3.File("implicit/parent/of/a/file", 0o644, []byte("no parent entries"))
	layer3, err := l3.Layer()
	if err != nil {
		return nil, err
	}
	return imageOf("amd64", "", v1.Config{
		Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{"cat /data/b"},
		Env: []string{ImagePathEnv, "MULTI=1"}, WorkingDir: "/data", User: "app",
		ExposedPorts: map[string]struct{}{"8080/tcp": {}}, Volumes: map[string]struct{}{"/data": {}},
		StopSignal: "SIGINT", Labels: map[string]string{"dev.skiff.test": "multilayer"},
	}, base, layer1, layer2, layer3)
}

// BuildLarge builds a linux/amd64 image of about totalBytes of file content in nLayers layers: in
// each, a few 4 MiB files and many 8–64 KiB files of random, compressible text (seeded: the same
// arguments give the same image). Built at run time; nothing of it is committed.
func BuildLarge(totalBytes int64, nLayers int, seed int64) (v1.Image, error) {
	rng := rand.New(rand.NewSource(seed))
	words := make([][]byte, 4096)
	for i := range words {
		w := make([]byte, 2+rng.Intn(10))
		for j := range w {
			w[j] = byte('a' + rng.Intn(26))
		}
		words[i] = w
	}
	text := func(n int) []byte {
		b := make([]byte, 0, n+16)
		for len(b) < n {
			b = append(b, words[rng.Intn(len(words))]...)
			b = append(b, ' ')
			if rng.Intn(12) == 0 {
				b = append(b, byte(rng.Intn(256)), '\n')
			}
		}
		return b[:n]
	}
	per := totalBytes / int64(nLayers)
	var layers []v1.Layer
	for li := 0; li < nLayers; li++ {
		var tb TarBuilder
		dir := fmt.Sprintf("large/l%d", li)
		tb.Dir("large", 0o755)
		tb.Dir(dir, 0o755)
		var n int64
		for i := 0; n < per*6/10; i++ {
			sz := 4 << 20
			tb.File(fmt.Sprintf("%s/big%d.bin", dir, i), 0o644, text(sz))
			n += int64(sz)
		}
		for i := 0; n < per; i++ {
			if i%100 == 0 {
				tb.Dir(fmt.Sprintf("%s/d%d", dir, i/100), 0o755)
			}
			sz := 8<<10 + rng.Intn(56<<10)
			tb.File(fmt.Sprintf("%s/d%d/f%d.txt", dir, i/100, i), 0o644, text(sz))
			n += int64(sz)
		}
		l, err := tb.Layer()
		if err != nil {
			return nil, err
		}
		layers = append(layers, l)
	}
	return imageOf("amd64", "", v1.Config{Cmd: []string{"sh"}, Env: []string{ImagePathEnv}}, layers...)
}
