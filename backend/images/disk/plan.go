package disk

import (
	"archive/tar"
	"sort"
)

// plan is what the merged tree becomes in the disk: directories parents first, then every other
// inode with its names, the regular files with content waiting for their layer's second read.
type plan struct {
	root     *tar.Header
	dirs     []*tar.Header // Name is the final path
	others   []*object     // symlinks, devices, fifos, empty files: written without reading a layer
	links    map[*object][]string
	content  map[[2]int]*object // (layer, entry) → the regular file whose bytes that entry carries
	files    int
	dataSize int64
}

// plan walks the tree in name order (so the same layers give the same disk).
func (t *tree) plan() *plan {
	p := &plan{root: t.root.hdr, links: map[*object][]string{}, content: map[[2]int]*object{}}
	var walk func(n *node, prefix string)
	walk = func(n *node, prefix string) {
		names := make([]string, 0, len(n.children))
		for name := range n.children {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			c := n.children[name]
			rel := prefix + name
			if c.isDir() {
				h := *c.hdr
				h.Name = rel
				p.dirs = append(p.dirs, &h)
				walk(c, rel+"/")
				continue
			}
			o := c.obj
			if o.path != "" {
				p.links[o] = append(p.links[o], rel)
				continue
			}
			o.path = rel
			p.files++
			if o.hdr.Typeflag == tar.TypeReg && o.hdr.Size > 0 {
				p.content[[2]int{o.layer, o.entry}] = o
				p.dataSize += o.hdr.Size
			} else {
				p.others = append(p.others, o)
			}
		}
	}
	walk(t.root, "")
	return p
}

// header is the entry the flattened stream carries for o (or for a directory): the layer's
// metadata under its final name, with atime and ctime set to mtime as the unpacker leaves them.
func outHeader(h *tar.Header, name string) *tar.Header {
	out := &tar.Header{
		Typeflag:   h.Typeflag,
		Name:       name,
		Linkname:   h.Linkname,
		Size:       h.Size,
		Mode:       h.Mode & 0o7777,
		Uid:        h.Uid,
		Gid:        h.Gid,
		ModTime:    h.ModTime,
		AccessTime: h.ModTime,
		ChangeTime: h.ModTime,
		Devmajor:   h.Devmajor,
		Devminor:   h.Devminor,
		Format:     tar.FormatPAX,
	}
	for k, v := range h.PAXRecords {
		if len(k) > len(xattrPAX) && k[:len(xattrPAX)] == xattrPAX {
			if out.PAXRecords == nil {
				out.PAXRecords = map[string]string{}
			}
			out.PAXRecords[k] = v
		}
	}
	switch h.Typeflag {
	case tar.TypeDir:
		out.Name += "/"
		out.Size = 0
	case tar.TypeReg:
	default:
		out.Size = 0
	}
	return out
}

// xattrPAX prefixes the PAX records that carry extended attributes (as GNU tar and Docker write them).
const xattrPAX = "SCHILY.xattr."
