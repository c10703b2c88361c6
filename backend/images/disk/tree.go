package disk

import (
	"archive/tar"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/skiff-containers/skiff/backend/images/internal/tarpath"
)

// The merge: the layers' entries are applied, bottom layer first, to an in-memory tree that holds
// metadata only (tar headers), with the rules of the store's unpacker (backend/images/unpack.go):
// the same name checks, symlinks in parent paths followed but never out of the root, the final
// component never followed, whiteouts hiding lower layers only, an opaque marker keeping what its
// own layer wrote, hard links sharing one object so a later layer replacing the target's path leaves
// the link with the old content. File content is not held: an object remembers which entry of
// which layer carries it, and the second pass streams it from there into the disk.

// whiteoutPrefix marks a deleted path in a layer (OCI image spec, "Whiteouts"); whiteoutOpaque hides
// everything the lower layers put in its directory.
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
	maxSymlinkHops = 40 // as the kernel's MAXSYMLINKS
)

var (
	errEscape   = errors.New("path leaves the image root")
	errNotExist = errors.New("no such file or directory")
	errNotDir   = errors.New("not a directory")
	errLoop     = errors.New("too many levels of symbolic links")
)

// node is one name in the tree. Directories have children; every other node points at an object,
// shared by the names hard-linked to it.
type node struct {
	parent   *node
	name     string
	hdr      *tar.Header      // directories: their metadata (nil for a parent no entry described)
	children map[string]*node // directories only
	obj      *object          // non-directories only
}

func (n *node) isDir() bool { return n.children != nil }

// object is one non-directory inode: its metadata and, for a regular file, where its content is.
type object struct {
	hdr   *tar.Header
	layer int // the entry carrying it: layer index and entry index within the layer
	entry int
	path  string // its first name in the final tree (set by plan)
}

// tree is the merged image.
type tree struct {
	root    *node
	written map[string]bool // names the current layer wrote: an opaque marker keeps them
	created time.Time       // mtime given to parents no entry described: the current entry's
}

func newTree() *tree {
	return &tree{root: &node{children: map[string]*node{}}}
}

// dir resolves the directory rel beneath the root, following symlinks as the unpacker's walk does:
// an absolute target or a ".." above the root is errEscape. With create, missing components become
// directories.
func (t *tree) dir(rel string, create bool) (*node, error) {
	stack := []*node{t.root}
	todo := strings.Split(rel, "/")
	hops := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		cur := stack[len(stack)-1]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) == 1 {
				return nil, errEscape
			}
			stack = stack[:len(stack)-1]
			continue
		}
		child := cur.children[c]
		switch {
		case child == nil && create:
			child = &node{parent: cur, name: c, children: map[string]*node{},
				hdr: &tar.Header{Typeflag: tar.TypeDir, Mode: 0o755, ModTime: t.created}}
			cur.children[c] = child
		case child == nil:
			return nil, errNotExist
		case child.isDir():
		case child.obj.hdr.Typeflag == tar.TypeSymlink:
			if hops++; hops > maxSymlinkHops {
				return nil, errLoop
			}
			target := child.obj.hdr.Linkname
			if path.IsAbs(target) {
				return nil, errEscape
			}
			todo = append(strings.Split(target, "/"), todo...)
			continue
		default:
			return nil, errNotDir
		}
		stack = append(stack, child)
	}
	return stack[len(stack)-1], nil
}

// parent resolves the directory that holds an entry, with the unpacker's error messages.
func (t *tree) parent(dir string, create bool) (*node, error) {
	n, err := t.dir(dir, create)
	switch {
	case errors.Is(err, errEscape):
		return nil, fmt.Errorf("%w: %q resolves outside the image root (through a symlink or \"..\")", ErrUnsafeEntry, dir)
	case errors.Is(err, errNotDir):
		return nil, fmt.Errorf("parent %q is not a directory: %w", dir, err)
	}
	return n, err
}

// beginLayer starts a layer: whiteouts and opaque markers now hide what came before.
func (t *tree) beginLayer() { t.written = map[string]bool{} }

// apply applies one entry, entry number idx of layer layer.
func (t *tree) apply(hdr *tar.Header, layer, idx int) error {
	rel, err := tarpath.Clean(hdr.Name)
	if err != nil {
		return err
	}
	t.created = hdr.ModTime
	dir, base := tarpath.Split(rel)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return t.whiteout(dir, base)
	}
	if rel == "." {
		if hdr.Typeflag == tar.TypeDir {
			t.root.hdr = hdr
			return nil
		}
		return fmt.Errorf("%w: the root is not a directory", ErrUnsafeEntry)
	}
	switch hdr.Typeflag {
	case tar.TypeDir, tar.TypeReg, tar.TypeSymlink, tar.TypeLink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		// Global headers, GNU volume headers, ...: nothing to unpack, as in the unpacker.
		return nil
	}
	p, err := t.parent(dir, true)
	if err != nil {
		return err
	}
	t.written[rel] = true
	old := p.children[base]
	switch hdr.Typeflag {
	case tar.TypeDir:
		if old != nil && old.isDir() {
			old.hdr = hdr
			return nil
		}
		p.children[base] = &node{parent: p, name: base, hdr: hdr, children: map[string]*node{}}
		return nil
	case tar.TypeLink:
		return t.hardlink(p, base, rel, hdr)
	}
	p.children[base] = &node{parent: p, name: base, obj: &object{hdr: hdr, layer: layer, entry: idx}}
	return nil
}

func (t *tree) hardlink(p *node, base, rel string, hdr *tar.Header) error {
	target, err := tarpath.Clean(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
	}
	if target == rel {
		return nil
	}
	tdir, tbase := tarpath.Split(target)
	tp, err := t.parent(tdir, false)
	if err != nil {
		return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
	}
	tn := tp.children[tbase]
	if tn == nil {
		return fmt.Errorf("hardlink target %q does not exist", hdr.Linkname)
	}
	if tn.isDir() {
		return fmt.Errorf("%w: hardlink to directory %q", ErrUnsafeEntry, hdr.Linkname)
	}
	if old := p.children[base]; old != nil && old.obj == tn.obj {
		return nil
	}
	p.children[base] = &node{parent: p, name: base, obj: tn.obj}
	return nil
}

func (t *tree) whiteout(dir, base string) error {
	p, err := t.parent(dir, false)
	if errors.Is(err, errNotExist) || errors.Is(err, errNotDir) {
		return nil // nothing below to hide
	}
	if err != nil {
		return err
	}
	if base == whiteoutOpaque {
		for name := range p.children {
			if !t.written[tarpath.Join(dir, name)] {
				delete(p.children, name)
			}
		}
		return nil
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("%w: whiteout of %q", ErrUnsafeEntry, name)
	}
	if t.written[tarpath.Join(dir, name)] {
		return nil // whiteouts hide lower layers only
	}
	delete(p.children, name)
	return nil
}
