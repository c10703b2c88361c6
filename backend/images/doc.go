// Package images is Skiff's image store: it turns an image reference into an unpacked rootfs
// directory and an image config, using go-containerregistry for registries and archive formats.
//
//	s, err := images.Open(filepath.Join(home, "images"), images.WithLogger(log),
//		images.WithInUse(engine.ImageInUse))
//	img, err := s.Ensure(ctx, "alpine", images.PullOptions{Progress: show})
//	// img.RootFS is the unpacked root, img.Config the entrypoint, cmd, env, user, …
//
// What it does:
//   - References are normalised as Docker does (NormalizeRef); the platform defaults to
//     linux/<host arch> (WithPlatform, PullOptions.Platform), chosen from an index; a missing one
//     fails with ErrPlatformNotFound listing what the image has. Credentials come from the Docker
//     keychain; loopback and private-network registries are spoken to over plain HTTP.
//   - Layers are downloaded concurrently (WithConcurrency) into one content store shared by all
//     images, verified by digest, and never downloaded twice. Concurrent pulls of one reference
//     share one download. Progress is reported per layer.
//   - Each image is unpacked once into its own rootfs: whiteouts, opaque directories, hardlinks,
//     symlinks, modes, mtimes, owners (or, when the process may not chown, an "owners" file next to
//     the rootfs), device nodes and fifos (recorded there too when mknod is not permitted).
//   - Unpacking never leaves the rootfs: entries are resolved beneath it with openat2
//     RESOLVE_BENEATH on Linux and an O_NOFOLLOW walk elsewhere. An entry that is absolute, climbs
//     with "..", or reaches outside through a symlink or a hardlink fails the pull with
//     ErrUnsafeEntry, naming the entry. Symlinks that stay inside the root are followed.
//   - Nothing half-done is visible: a rootfs is built under images/.unpack-*, synced, given its
//     record and renamed into place as the last step; leftovers of an interrupted pull are removed
//     by the next one (and by Open), and its verified blobs are reused.
//   - Nothing a registry or an archive declares is trusted to be small: downloads stop one byte past
//     their descriptor's size, a layer stops one byte past WithMaxLayerSize (uncompressed, or written
//     out: sparse entries count in full) with ErrTooLarge, and Load reads only regular files and
//     directories of its archive (ErrUnsafeEntry names anything else), each read bounded.
//   - Open removes what interrupted pulls left, so a process opens a store only when no other one
//     uses it: the engine's data-dir lock is taken first (engine.LockHome).
//   - List, Get, Remove (ErrInUse while a container uses the image, unless forced), Prune,
//     DiskUsage; Load and Save in docker-archive and OCI-layout form; PullArtifact and
//     PushArtifact for OCI artifacts made of files (kernel bundles).
package images
