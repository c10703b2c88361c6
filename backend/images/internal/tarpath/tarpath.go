// Package tarpath holds the rules for the names of a layer's tar entries that both of the image
// store's writers share: the unpacker (a directory) and the disk builder (an ext4 image).
//
//	rel, err := tarpath.Clean(hdr.Name) // wraps ErrUnsafeEntry for a name that leaves the root
package tarpath

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// ErrUnsafeEntry: an entry that would write outside the image's root (re-exported by the images
// packages as their own ErrUnsafeEntry).
var ErrUnsafeEntry = errors.New("unsafe layer entry")

// Clean turns a tar entry name into a clean path relative to the root, refusing names that are
// empty, absolute or climb above the root.
func Clean(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("%w: empty name", ErrUnsafeEntry)
	}
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("%w: absolute path", ErrUnsafeEntry)
	}
	p := path.Clean(name)
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("%w: path climbs above the image root", ErrUnsafeEntry)
	}
	return p, nil
}

// Split splits a clean relative path into its directory ("." at the root) and base name.
func Split(rel string) (dir, base string) {
	i := strings.LastIndexByte(rel, '/')
	if i < 0 {
		return ".", rel
	}
	return rel[:i], rel[i+1:]
}

// Join is Split's inverse.
func Join(dir, base string) string {
	if dir == "." {
		return base
	}
	return dir + "/" + base
}
