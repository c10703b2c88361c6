// Package disk builds the read-only ext4 disk image of a container image from its layers, on the
// host and without root: the root filesystem a container's VM mounts from a block device instead of
// a shared directory. The engine will attach one such disk per image (shared by every container of
// it, a writable layer on top in the guest); this package only builds it.
//
//	err := disk.Build(ctx, img.Layers(), filepath.Join(dir, "rootfs.ext4"), disk.Options{})
//
// What the disk holds: the layers applied bottom to top with the store's unpacking rules
// (backend/images/unpack.go), but with everything the unpacker can only record when it is not root
// written into the filesystem itself: owners, modes with setuid, setgid and sticky bits, device
// nodes and fifos as the tar describes them, extended attributes (SCHILY.xattr PAX records),
// symlinks, hard links (also to files a later layer replaced: the link keeps the old content),
// whiteouts and opaque directories. Entries that would reach outside the image (absolute names,
// ".." above the root, symlinks or hard links leading out) fail with ErrUnsafeEntry naming the
// entry, and no file is left at dst.
//
// How: the layers' headers are merged in memory (metadata only), then one flattened tar stream, each
// name once, is produced by reading the layers again for the content that survives, and fed to
// hcsshim's tar2ext4, which writes a compact ext4 image. The file is written under a temporary name,
// sparse, synced and renamed into place; the same layers give the same bytes.
//
// The image is meant to be shared and never written: no journal, no free blocks, and the ext4
// "read-only" feature (RO_COMPAT_READONLY) set, so Linux (the 6.1 guest kernel included, which has
// ext4 built in) mounts it read-only whatever the mount flags say ("EXT4-fs: filesystem is
// read-only"). A container's writable layer therefore goes on top of it (overlayfs in the guest,
// upper directory on a disk of its own). A writable clone is possible too, but is a second step
// on a copy: `tune2fs -O ^read-only`, `resize2fs` to give it room (and `tune2fs -O has_journal`);
// that copy then mounts read-write.
package disk
