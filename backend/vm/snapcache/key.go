package snapcache

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"os"
	"path/filepath"
)

// Hash makes a shape's key from everything a template bakes in: lines of
// the backend's own (versions, sizes, device arguments) and the files it
// boots (path, size and modification time: a rebuilt kernel makes new
// snapshots). The zero value is not ready: use NewHash.
type Hash struct{ h hash.Hash }

// NewHash starts a key.
func NewHash() *Hash { return &Hash{h: sha256.New()} }

// Line adds one line of the shape's description.
func (k *Hash) Line(format string, args ...any) {
	fmt.Fprintf(k.h, format, args...)
	fmt.Fprintln(k.h)
}

// File adds path as it is now: its absolute path, size and modification time.
func (k *Hash) File(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	k.Line("%s %d %d", abs, st.Size(), st.ModTime().UnixNano())
	return nil
}

// Key is prefix (the guest's arch) and 24 hex digits of the hash.
func (k *Hash) Key(prefix string) string {
	return prefix + "-" + hex.EncodeToString(k.h.Sum(nil))[:24]
}
