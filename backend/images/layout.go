//go:build linux || darwin

package images

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"
)

// An archive or OCI layout being loaded is not trusted. Nothing in it is read unless it is a regular
// file or a directory: a symlink could point at /dev/zero (a read that never ends) or at a directory
// elsewhere on the host, a FIFO would block the open, a sparse tar entry could claim terabytes of
// zeros. Every read is bounded: metadata (index.json, manifests, configs) by maxMetadataSize, blobs
// by the size their descriptor declares.
const (
	maxMetadataSize = 16 << 20 // far above any real index, manifest or config
	maxLinkHops     = 40       // links between a docker archive's own entries
)

// isSparse reports whether a tar entry is a sparse file (GNU or PAX sparse formats): its holes
// would be read as zeros, however large the entry claims to be.
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// plainEntry refuses an archive entry that is not a regular file or a directory (or, with
// allowLinks, a link to another entry of the same archive, which a docker archive may hold and
// which is resolved by name inside the archive, never on the filesystem).
func plainEntry(hdr *tar.Header, allowLinks bool) error {
	if isSparse(hdr) {
		return fmt.Errorf("%w: a sparse file (claiming %d bytes); archives are read without sparse entries", ErrUnsafeEntry, hdr.Size)
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeDir, tar.TypeXGlobalHeader:
		return nil
	case tar.TypeSymlink, tar.TypeLink:
		if allowLinks {
			return nil
		}
	}
	return fmt.Errorf("%w: a %s; only regular files and directories are read from this archive", ErrUnsafeEntry, tarKind(hdr.Typeflag))
}

func tarKind(t byte) string {
	switch t {
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "FIFO"
	case tar.TypeCont:
		return "contiguous file"
	}
	return fmt.Sprintf("tar entry of type %q", t)
}

func modeKind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "regular file"
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFIFO:
		return "FIFO"
	case unix.S_IFCHR:
		return "character device"
	case unix.S_IFBLK:
		return "block device"
	case unix.S_IFSOCK:
		return "socket"
	}
	return fmt.Sprintf("file of mode %#o", mode&unix.S_IFMT)
}

// ociDir reads an OCI image layout directory that is not trusted.
type ociDir struct {
	ctx  context.Context
	root string
}

// open opens rel (slash-separated, below the root) for reading. Each directory on the way is
// checked with lstat and opened with O_NOFOLLOW; the file is checked with lstat, opened with
// O_NOFOLLOW|O_NONBLOCK (a FIFO swapped in cannot block the open) and must be a regular file by fstat.
func (d *ociDir) open(rel string) (*os.File, int64, error) {
	parts := strings.Split(rel, "/")
	for _, c := range parts {
		if c == "" || c == "." || c == ".." {
			return nil, 0, fmt.Errorf("%w: layout path %q", ErrUnsafeEntry, rel)
		}
	}
	dirfd, err := unix.Open(d.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, 0, &os.PathError{Op: "open", Path: d.root, Err: err}
	}
	defer func() { unix.Close(dirfd) }()
	for i, c := range parts {
		sofar := strings.Join(parts[:i+1], "/")
		var st unix.Stat_t
		if err := unix.Fstatat(dirfd, c, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil, 0, fmt.Errorf("layout entry %q: %w", sofar, fs.ErrNotExist)
			}
			return nil, 0, fmt.Errorf("layout entry %q: %w", sofar, err)
		}
		last := i == len(parts)-1
		want := uint32(unix.S_IFDIR)
		flags := unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if last {
			want = unix.S_IFREG
			flags = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC
		}
		if uint32(st.Mode)&unix.S_IFMT != want {
			return nil, 0, notPlain(sofar, uint32(st.Mode))
		}
		fd, err := unix.Openat(dirfd, c, flags, 0)
		if err != nil {
			return nil, 0, fmt.Errorf("layout entry %q: %w", sofar, err)
		}
		if err := unix.Fstat(fd, &st); err != nil || uint32(st.Mode)&unix.S_IFMT != want {
			unix.Close(fd)
			if err != nil {
				return nil, 0, fmt.Errorf("layout entry %q: %w", sofar, err)
			}
			return nil, 0, notPlain(sofar, uint32(st.Mode)) // replaced between lstat and open
		}
		if !last {
			unix.Close(dirfd)
			dirfd = fd
			continue
		}
		return os.NewFile(uintptr(fd), filepath.Join(d.root, filepath.FromSlash(rel))), st.Size, nil
	}
	return nil, 0, fmt.Errorf("%w: empty layout path", ErrUnsafeEntry) // not reached: parts has an element
}

func notPlain(rel string, mode uint32) error {
	return fmt.Errorf("%w: layout entry %q is a %s; only regular files and directories are read",
		ErrUnsafeEntry, rel, modeKind(mode))
}

// readSmall reads a metadata file of at most max bytes.
func (d *ociDir) readSmall(rel string, max int64) ([]byte, error) {
	f, size, err := d.open(rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if size > max {
		return nil, fmt.Errorf("%w: layout file %q is %d bytes, more than the %d it may have", ErrTooLarge, rel, size, max)
	}
	b, err := io.ReadAll(io.LimitReader(&ctxReader{ctx: d.ctx, r: f}, max+1))
	if err != nil {
		return nil, fmt.Errorf("reading layout file %q: %w", rel, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w: layout file %q grew past %d bytes while read", ErrTooLarge, rel, max)
	}
	return b, nil
}

func blobRel(dg v1.Hash) (string, error) {
	if dg.Algorithm != "sha256" || len(dg.Hex) != 64 || !isHex(dg.Hex) {
		return "", fmt.Errorf("%w: blob digest %q", ErrUnsupported, dg)
	}
	return "blobs/sha256/" + dg.Hex, nil
}

// blob opens the blob desc names; it must be a regular file of exactly desc.Size bytes. Reads stop
// at that size and when ctx ends.
func (d *ociDir) blob(desc v1.Descriptor) (io.ReadCloser, error) {
	rel, err := blobRel(desc.Digest)
	if err != nil {
		return nil, err
	}
	f, size, err := d.open(rel)
	if err != nil {
		return nil, err
	}
	if size != desc.Size {
		f.Close()
		return nil, fmt.Errorf("%w: layout blob %s is %d bytes, its descriptor says %d", ErrDigestMismatch, desc.Digest, size, desc.Size)
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(&ctxReader{ctx: d.ctx, r: f}, desc.Size), f}, nil
}

// readBlob reads a metadata blob (a manifest, an index, a config) and checks its digest.
func (d *ociDir) readBlob(desc v1.Descriptor) ([]byte, error) {
	if desc.Size < 0 || desc.Size > maxMetadataSize {
		return nil, fmt.Errorf("%w: %s %s declares %d bytes, more than the %d it may have", ErrTooLarge, desc.MediaType, desc.Digest, desc.Size, maxMetadataSize)
	}
	rc, err := d.blob(desc)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("reading layout blob %s: %w", desc.Digest, err)
	}
	if sum := sha256.Sum256(b); int64(len(b)) != desc.Size || hex.EncodeToString(sum[:]) != desc.Digest.Hex {
		return nil, fmt.Errorf("layout blob %s: %w", desc.Digest, ErrDigestMismatch)
	}
	return b, nil
}

// index reads index.json (after checking that oci-layout is there and a regular file).
func (d *ociDir) index() (*v1.IndexManifest, error) {
	if _, err := d.readSmall("oci-layout", 4<<10); err != nil {
		return nil, err
	}
	b, err := d.readSmall("index.json", maxMetadataSize)
	if err != nil {
		return nil, err
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(b, &im); err != nil {
		return nil, fmt.Errorf("parsing index.json: %w", err)
	}
	return &im, nil
}

func (d *ociDir) childIndex(desc v1.Descriptor) (*v1.IndexManifest, error) {
	b, err := d.readBlob(desc)
	if err != nil {
		return nil, err
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(b, &im); err != nil {
		return nil, fmt.Errorf("parsing index %s: %w", desc.Digest, err)
	}
	return &im, nil
}

// image returns the image manifest desc names, its config read (bounded) and its layers read from
// the layout as install asks for them.
func (d *ociDir) image(desc v1.Descriptor) (v1.Image, error) {
	rawMf, err := d.readBlob(desc)
	if err != nil {
		return nil, err
	}
	mf, err := v1.ParseManifest(bytesReader(rawMf))
	if err != nil {
		return nil, fmt.Errorf("parsing manifest %s: %w", desc.Digest, err)
	}
	rawCfg, err := d.readBlob(mf.Config)
	if err != nil {
		return nil, err
	}
	mt := mf.MediaType
	if mt == "" {
		mt = desc.MediaType
	}
	return partial.CompressedToImage(&layoutImage{d: d, mt: mt, mf: mf, rawMf: rawMf, rawCfg: rawCfg})
}

// layoutImage is an image of an ociDir (partial.CompressedImageCore).
type layoutImage struct {
	d      *ociDir
	mt     types.MediaType
	mf     *v1.Manifest
	rawMf  []byte
	rawCfg []byte
}

func (i *layoutImage) RawConfigFile() ([]byte, error)      { return i.rawCfg, nil }
func (i *layoutImage) MediaType() (types.MediaType, error) { return i.mt, nil }
func (i *layoutImage) RawManifest() ([]byte, error)        { return i.rawMf, nil }
func (i *layoutImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, l := range i.mf.Layers {
		if l.Digest == h {
			return &layoutLayer{d: i.d, desc: l}, nil
		}
	}
	return nil, fmt.Errorf("layer %s: not in the manifest: %w", h, ErrNotFound)
}

type layoutLayer struct {
	d    *ociDir
	desc v1.Descriptor
}

func (l *layoutLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *layoutLayer) Compressed() (io.ReadCloser, error)  { return l.d.blob(l.desc) }
func (l *layoutLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *layoutLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }
