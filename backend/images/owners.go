//go:build linux || darwin

package images

import (
	"archive/tar"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ownerLog records, next to the rootfs, what the unpacking process could not apply itself: owners
// when it may not chown, and device nodes when it may not mknod. One line per entry:
// "<type> <uid> <gid> <mode octal> <major> <minor> <quoted path>" with type f d l h c b p.
type ownerLog struct {
	path string
	buf  []byte
}

func (o *ownerLog) add(rel string, hdr *tar.Header, special bool) error {
	t := "f"
	switch hdr.Typeflag {
	case tar.TypeDir:
		t = "d"
	case tar.TypeSymlink:
		t = "l"
	case tar.TypeChar:
		t = "c"
	case tar.TypeBlock:
		t = "b"
	case tar.TypeFifo:
		t = "p"
	}
	o.buf = fmt.Appendf(o.buf, "%s %d %d %o %d %d %s\n", t, hdr.Uid, hdr.Gid, hdr.Mode&0o7777,
		hdr.Devmajor, hdr.Devminor, strconv.Quote("/"+rel))
	return nil
}

func (o *ownerLog) flush() error {
	if len(o.buf) == 0 || o.path == "" {
		return nil
	}
	return os.WriteFile(o.path, o.buf, 0o644)
}

// setXattrs applies the extended attributes a layer carries for a file (file capabilities such as
// security.capability, mostly). Best effort: filesystems and users that cannot hold them skip them.
func setXattrs(fd int, hdr *tar.Header) {
	const prefix = "SCHILY.xattr."
	for k, v := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, prefix); ok {
			unix.Fsetxattr(fd, name, []byte(v), 0)
		}
	}
}
