package testutil

import (
	"archive/tar"
	"strings"
)

// HostileCase is a layer set every layer unpacker in Skiff must refuse (the store's unpacker, the
// disk builder): each reaches outside the image root, or tries to, through one entry. Entry is the
// name the error must quote.
type HostileCase struct {
	Name   string
	Entry  string
	Layers []func(b *TarBuilder)
}

// HostileLayers returns the hostile cases aimed at host, a directory standing for anything on the
// host outside the image.
func HostileLayers(host string) []HostileCase {
	up := strings.Repeat("../", 40) + strings.TrimPrefix(host, "/") // climbs to / from any depth
	return []HostileCase{
		{"dotdot file", up + "/evil", one(func(b *TarBuilder) { b.File(up+"/evil", 0o644, []byte("x")) })},
		{"dotdot inside the name", "a/../../evil", one(func(b *TarBuilder) { b.File("a/../../evil", 0o644, nil) })},
		{"absolute file", host + "/evil", one(func(b *TarBuilder) { b.File(host+"/evil", 0o644, []byte("x")) })},
		{"absolute dir", host + "/newdir/", one(func(b *TarBuilder) { b.Dir(host+"/newdir", 0o755) })},
		{"write through an absolute symlink", "link/evil", one(func(b *TarBuilder) {
			b.Symlink("link", host)
			b.File("link/evil", 0o644, []byte("x"))
		})},
		{"write through a climbing symlink", "rel/evil", one(func(b *TarBuilder) {
			b.Symlink("rel", up)
			b.File("rel/evil", 0o644, []byte("x"))
		})},
		{"write through a symlink chain", "a/evil", one(func(b *TarBuilder) {
			b.Symlink("a", "b")
			b.Symlink("b", "c/../../../../../../../../../../../../../../../.."+host)
			b.File("a/evil", 0o644, []byte("x"))
		})},
		{"overwrite through a symlink", "link/secret", one(func(b *TarBuilder) {
			b.Symlink("link", host)
			b.File("link/secret", 0o644, []byte("pwned"))
		})},
		{"mkdir through a symlink", "link/newdir/", one(func(b *TarBuilder) {
			b.Symlink("link", host)
			b.Dir("link/newdir", 0o755)
		})},
		{"symlink created through a symlink", "link/evil", one(func(b *TarBuilder) {
			b.Symlink("link", host)
			b.Symlink("link/evil", "/etc/passwd")
		})},
		{"fifo through a symlink", "link/fifo", one(func(b *TarBuilder) {
			b.Symlink("link", host)
			b.Add(&tar.Header{Name: "link/fifo", Typeflag: tar.TypeFifo, Mode: 0o644}, nil)
		})},
		{"symlink from a lower layer", "link/evil", []func(b *TarBuilder){
			func(b *TarBuilder) { b.Symlink("link", host) },
			func(b *TarBuilder) { b.File("link/evil", 0o644, []byte("x")) },
		}},
		{"hardlink to a climbing path", "hl", one(func(b *TarBuilder) { hardlinkEntry(b, "hl", up+"/secret") })},
		{"hardlink to an absolute path", "hl", one(func(b *TarBuilder) { hardlinkEntry(b, "hl", host+"/secret") })},
		{"hardlink through a symlink", "hl", one(func(b *TarBuilder) {
			b.Symlink("link", host)
			hardlinkEntry(b, "hl", "link/secret")
		})},
		{"whiteout climbing", up + "/.wh.secret", one(func(b *TarBuilder) { b.File(up+"/.wh.secret", 0o644, nil) })},
		{"whiteout through a symlink", "link/.wh.secret", one(func(b *TarBuilder) {
			b.Symlink("link", host)
			b.File("link/.wh.secret", 0o644, nil)
		})},
		{"opaque whiteout through a symlink", "link/.wh..wh..opq", one(func(b *TarBuilder) {
			b.Symlink("link", host)
			b.File("link/.wh..wh..opq", 0o644, nil)
		})},
		{"whiteout of ..", "d/.wh..", one(func(b *TarBuilder) {
			b.Dir("d", 0o755)
			b.File("d/.wh..", 0o644, nil)
		})},
	}
}

func hardlinkEntry(b *TarBuilder, name, target string) {
	b.Add(&tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target}, nil)
}

func one(f func(b *TarBuilder)) []func(b *TarBuilder) {
	return []func(b *TarBuilder){f}
}
