// Command busybox-image writes the test busybox image (internal/testutil, built from Debian's
// busybox-static .deb in _build/debs or $SKIFF_DEBS) as a docker-archive tagged busybox:latest,
// for `skiff load -i`. scripts/stress.sh uses it.
//
//	go run ./scripts/busybox-image -o busybox.tar [-arch amd64]
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/skiff-containers/skiff/internal/testutil"
)

func main() {
	out := flag.String("o", "", "the archive to write (required)")
	arch := flag.String("arch", runtime.GOARCH, "image architecture: amd64 or arm64")
	tag := flag.String("tag", "busybox:latest", "the image's tag in the archive")
	flag.Parse()
	if err := run(*out, *arch, *tag); err != nil {
		fmt.Fprintln(os.Stderr, "busybox-image:", err)
		os.Exit(1)
	}
}

func run(out, arch, tag string) error {
	if out == "" {
		return fmt.Errorf("no output file: pass -o FILE")
	}
	ref, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("tag %q: %w", tag, err)
	}
	debs, err := testutil.DebsDir()
	if err != nil {
		return err
	}
	img, err := testutil.BuildBusyboxImage(debs, arch)
	if err != nil {
		return fmt.Errorf("building the %s image from %s: %w", arch, debs, err)
	}
	if err := tarball.WriteToFile(out, ref, img); err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	return nil
}
