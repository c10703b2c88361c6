#!/usr/bin/env bash
# Builds Skiff.app for macOS: the Wails desktop binary (tags desktop,production) and the CLI, then
# build/darwin/stage.sh puts them, Info.plist, the icon (build/appicon.png) and the guest kernel bundles
# (KERNEL_DIR, default _build/kernel: arm64 and amd64) in place; signed ad hoc with the virtualization
# entitlement unless SIGN_IDENTITY names a certificate.
#
#   bash build/darwin/package.sh [OUTDIR]       (make package-darwin → _build/darwin/Skiff.app)
#
# Environment: SIGN_IDENTITY (codesign identity; default "-" = ad hoc), VERSION (default: git describe),
# GOARCH (default: the Mac's own arch; "universal" builds arm64 + amd64 and joins them with lipo).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/_build/darwin}

if [ "$(uname -s)" != Darwin ]; then
  echo "package-darwin: building Skiff.app needs macOS (Xcode command-line tools for cgo with the" >&2
  echo "Virtualization, Cocoa and WebKit frameworks, and codesign); this is $(uname -s)." >&2
  echo "On Linux, 'make darwincheck' type-checks the darwin code instead." >&2
  exit 1
fi
for tool in go codesign plutil; do
  command -v "$tool" >/dev/null || { echo "package-darwin: $tool not found" >&2; exit 1; }
done

version=${VERSION:-$(git -C "$root" describe --tags --always --dirty 2>/dev/null || echo 0.0.0)}
export VERSION=${version#v}
arch=${GOARCH:-$(go env GOARCH)}
app="$out/Skiff.app"

# The binaries embed the guest agents; the desktop one the built frontend too.
make -C "$root" -s agent frontend

bins=$(mktemp -d)
trap 'rm -rf "$bins"' EXIT
export CGO_ENABLED=1 GOOS=darwin
export CGO_CFLAGS="${CGO_CFLAGS:-} -mmacosx-version-min=12.0"
export CGO_LDFLAGS="${CGO_LDFLAGS:-} -framework UniformTypeIdentifiers -mmacosx-version-min=12.0"
gobuild() { # gobuild ARCH OUTPUT TAGS
  (cd "$root" && GOARCH=$1 go build -tags "$3" -trimpath \
    -ldflags "-s -w -X main.version=$VERSION" -o "$2" .)
}
build_both() { # build_both NAME TAGS: $bins/NAME for $arch, joined with lipo when universal
  if [ "$arch" = universal ]; then
    gobuild arm64 "$bins/$1-arm64" "$2"
    gobuild amd64 "$bins/$1-amd64" "$2"
    lipo -create -output "$bins/$1" "$bins/$1-arm64" "$bins/$1-amd64"
  else
    gobuild "$arch" "$bins/$1" "$2"
  fi
}
build_both Skiff desktop,production
build_both skiff ""

# Info.plist, the icon, the kernel bundles (arm64 and amd64) and both binaries, in place.
APP_BIN="$bins/Skiff" CLI_BIN="$bins/skiff" bash "$here/stage.sh" "$app"
plutil -lint "$app/Contents/Info.plist" >/dev/null

identity=${SIGN_IDENTITY:--}
# The CLI first (nested code is signed inside out); it runs VMs too (skiff serve), so it gets the
# virtualization entitlement as well.
codesign --force --options runtime --timestamp=none --entitlements "$here/entitlements.plist" \
  -s "$identity" "$app/Contents/Resources/bin/skiff"
codesign --force --options runtime --timestamp=none --entitlements "$here/entitlements.plist" \
  -s "$identity" "$app"
codesign --verify --strict --verbose=1 "$app"
echo "package-darwin: $app (version $VERSION, $arch, signed by ${identity/#-/ad hoc})"
