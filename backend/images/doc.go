// Package images is Skiff's image store: it turns an image reference into an image config and a
// read-only ext4 disk of the image's filesystem, using go-containerregistry for registries and archive
// formats and backend/images/disk for the disk.
//
//	s, err := images.Open(filepath.Join(home, "images"), images.WithLogger(log),
//		images.WithInUse(engine.ImageInUse))
//	img, err := s.Ensure(ctx, "alpine", images.PullOptions{Progress: show})
//	// img.Config: the entrypoint, cmd, env, user, …
//	path, err := s.Disk(ctx, img.ID, nil) // the image's disk, shared by its containers
//
// What it does:
//   - References are normalised as Docker does (NormalizeRef); the platform defaults to
//     linux/<host arch> (WithPlatform, PullOptions.Platform), chosen from an index; a missing one
//     fails with ErrPlatformNotFound listing what the image has. Credentials come from the Docker
//     keychain; loopback and private-network registries are spoken to over plain HTTP.
//   - Layers are downloaded concurrently (WithConcurrency) into one content store shared by all
//     images, verified by digest, and never downloaded twice. Concurrent pulls of one reference
//     share one download. Progress is reported per layer.
//   - Each filesystem is built once into a read-only ext4 disk (disk.Build; imagedisk.go), keyed by
//     the layers' chain ID: whiteouts, opaque directories, hard links, symlinks, modes with the
//     setuid, setgid and sticky bits, owners, device nodes, fifos and xattrs as the layers say, all
//     written into the filesystem image, so nothing needs root and nothing belongs to anyone but
//     the process's user on the host. A store from before image disks (images unpacked into
//     directories, with an "owners" file) keeps working: an image's first Disk builds its disk from
//     the blobs and removes the directory, logged.
//   - No entry reaches outside the image: one that is absolute, climbs with "..", or reaches outside
//     through a symlink or a hard link fails the pull with ErrUnsafeEntry, naming the entry. Symlinks
//     that stay inside the root are followed. Archives being loaded (Load) are extracted beneath a
//     work directory with openat2 RESOLVE_BENEATH on Linux and an O_NOFOLLOW walk elsewhere, regular
//     files and directories only.
//   - Nothing half-done is visible: a disk is built under a temporary name and renamed into place,
//     and an image's record is written under images/.unpack-* and renamed into place as the last
//     step, after its disk; leftovers of an interrupted pull are removed by the next one (and by
//     Open), and its verified blobs are reused.
//   - Nothing a registry or an archive declares is trusted to be small: downloads stop one byte past
//     their descriptor's size, a layer stops one byte past WithMaxLayerSize (uncompressed, or written
//     out: sparse entries count in full) with ErrTooLarge, and Load reads only regular files and
//     directories of its archive (ErrUnsafeEntry names anything else), each read bounded.
//   - Open removes what interrupted pulls left, so a process opens a store only when no other one
//     uses it: the engine's data-dir lock is taken first (engine.LockHome).
//   - List, Get, Remove (ErrInUse while a container uses the image, unless forced), Prune (both
//     also delete the disks no image needs), DiskUsage; Load and Save in docker-archive and OCI-layout form; PullArtifact and
//     PushArtifact for OCI artifacts made of files (kernel bundles).
package images
