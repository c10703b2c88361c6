package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/skiff-containers/skiff/backend/images"
	"github.com/skiff-containers/skiff/backend/vm"
)

// defaultKernelDir is where `make kernel` writes the bundle of arch, relative to the source tree.
func defaultKernelDir(arch string) string { return filepath.Join("_build", "kernel", arch) }

func (c *cliCtx) kernelCmd() *cobra.Command {
	k := &cobra.Command{Use: "kernel", Short: "Manage guest kernel bundles"}
	k.AddCommand(c.kernelPushCmd())
	return k
}

func (c *cliCtx) kernelPushCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "push [flags] REF",
		Short: "Publish a kernel bundle to a registry as an OCI artifact",
		Long: `Publish a kernel bundle to a registry as an OCI artifact.

The bundle (manifest.json, the kernel image and the modules it lists) is checked first: every file
must match its digest in manifest.json, or nothing is pushed. Then manifest.json and every file it
lists go to REF, one layer per file, with the artifact type ` + vm.KernelArtifactType + `.
The artifact's digest is printed on stdout.

This command talks to the registry directly, not to the Skiff engine: no daemon is needed.
Credentials come from the Docker keychain (~/.docker/config.json, as written by ` + "`docker login`" + `).
Registries on localhost, loopback, *.local or a private (RFC 1918) address are spoken to over plain
HTTP, every other over HTTPS.

An engine uses the pushed bundle when SKIFF_KERNEL_REF names it (REF, or REPO@DIGEST to pin it)
and neither SKIFF_KERNEL nor SKIFF_KERNEL_DIR is set.`,
		Example: "  skiff kernel push registry.example.com/skiff/kernel:6.1-amd64\n" +
			"  skiff kernel push --dir _build/kernel/arm64 localhost:5000/skiff/kernel:6.1-arm64",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("want one REF to push to (e.g. registry.example.com/skiff/kernel:6.1-amd64), got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			digest, err := c.pushKernel(cmd.Context(), args[0], dir)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.out, digest)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "the bundle `DIR` (default "+defaultKernelDir(vm.HostArch())+", which make kernel builds)")
	return cmd
}

// pushKernel loads and verifies the bundle in dir (default: the host arch's under _build/kernel)
// and pushes it to ref, returning the artifact's digest.
func (c *cliCtx) pushKernel(ctx context.Context, ref, dir string) (string, error) {
	if dir == "" {
		dir = defaultKernelDir(vm.HostArch())
		if _, err := os.Stat(dir); err != nil {
			return "", fmt.Errorf("no kernel bundle to push: %s does not exist here; pass --dir DIR "+
				"(a directory with %s, as `make kernel` writes to _build/kernel/<arch>)", dir, vm.ManifestFile)
		}
	} else if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("no kernel bundle to push: %w (`make kernel` builds _build/kernel/<arch>)", err)
	}
	b, err := vm.LoadBundle(dir)
	if err != nil {
		return "", fmt.Errorf("not pushing: %w", err)
	}
	done := c.status(fmt.Sprintf("Verifying kernel bundle %s", dir))
	err = b.Verify()
	done()
	if err != nil {
		return "", fmt.Errorf("not pushing: %w", err)
	}
	files, size, err := bundleFiles(b)
	if err != nil {
		return "", fmt.Errorf("not pushing: %w", err)
	}
	what := fmt.Sprintf("kernel %s (%s, %d files, %s)", b.Manifest.Version, b.Manifest.Arch, len(files), humanSize(size))
	done = c.status(fmt.Sprintf("Pushing %s to %s", what, ref))
	digest, err := images.PushArtifact(ctx, ref, files, vm.KernelArtifactType)
	done()
	if err != nil {
		return "", err
	}
	if isTerminal(c.errw) {
		fmt.Fprintf(c.errw, "Pushed %s to %s\n", what, ref)
		if pinned, err := images.NormalizeRef(ref + "@" + digest); err == nil && !strings.Contains(ref, "@") {
			fmt.Fprintf(c.errw, "Use it with SKIFF_KERNEL_REF=%s\n", pinned)
		}
	}
	return digest, nil
}

// bundleFiles is what a kernel artifact holds: manifest.json and every file it lists (name →
// path), with their total size. Other files in the directory are not part of the bundle.
func bundleFiles(b *vm.Bundle) (map[string]string, int64, error) {
	names := []string{vm.ManifestFile}
	for n := range b.Manifest.Files {
		if n == vm.ManifestFile {
			return nil, 0, fmt.Errorf("kernel bundle %q: the manifest lists itself: %w", b.Dir, vm.ErrBadBundle)
		}
		names = append(names, n)
	}
	files := make(map[string]string, len(names))
	var size int64
	for _, n := range names {
		p := filepath.Join(b.Dir, n)
		info, err := os.Stat(p)
		if err != nil {
			return nil, 0, fmt.Errorf("kernel bundle %q: %w", b.Dir, err)
		}
		if !info.Mode().IsRegular() {
			return nil, 0, fmt.Errorf("kernel bundle %q: %s is not a regular file: %w", b.Dir, n, vm.ErrBadBundle)
		}
		files[n] = p
		size += info.Size()
	}
	return files, size, nil
}
