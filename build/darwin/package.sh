#!/usr/bin/env bash
# Builds Skiff.app for macOS: the Wails desktop binary (tags desktop,production), Info.plist, the icon
# when frontend/ or build/ provides one, and an ad-hoc signature with the virtualization entitlement.
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
version=${version#v}
build=$(git -C "$root" rev-list --count HEAD 2>/dev/null || echo 1)
arch=${GOARCH:-$(go env GOARCH)}
app="$out/Skiff.app"

# The binary embeds the guest agents and the built frontend.
make -C "$root" -s agent frontend

rm -rf "$app"
mkdir -p "$app/Contents/MacOS" "$app/Contents/Resources"
export CGO_ENABLED=1 GOOS=darwin
export CGO_CFLAGS="${CGO_CFLAGS:-} -mmacosx-version-min=12.0"
export CGO_LDFLAGS="${CGO_LDFLAGS:-} -framework UniformTypeIdentifiers -mmacosx-version-min=12.0"
gobuild() { # gobuild ARCH OUTPUT
  (cd "$root" && GOARCH=$1 go build -tags desktop,production -trimpath \
    -ldflags "-s -w -X main.version=$version" -o "$2" .)
}
if [ "$arch" = universal ]; then
  gobuild arm64 "$out/Skiff-arm64"
  gobuild amd64 "$out/Skiff-amd64"
  lipo -create -output "$app/Contents/MacOS/Skiff" "$out/Skiff-arm64" "$out/Skiff-amd64"
  rm -f "$out/Skiff-arm64" "$out/Skiff-amd64"
else
  gobuild "$arch" "$app/Contents/MacOS/Skiff"
fi

sed -e "s/@VERSION@/$version/g" -e "s/@BUILD@/$build/g" "$here/Info.plist" > "$app/Contents/Info.plist"
plutil -lint "$app/Contents/Info.plist" >/dev/null

# Icon: build/appicon.png (Wails' convention) converted with sips + iconutil when present.
icon="$root/build/appicon.png"
if [ -f "$icon" ] && command -v iconutil >/dev/null; then
  set_dir=$(mktemp -d)/iconfile.iconset
  mkdir -p "$set_dir"
  for s in 16 32 128 256 512; do
    sips -z $s $s "$icon" --out "$set_dir/icon_${s}x${s}.png" >/dev/null
    sips -z $((s * 2)) $((s * 2)) "$icon" --out "$set_dir/icon_${s}x${s}@2x.png" >/dev/null
  done
  iconutil -c icns -o "$app/Contents/Resources/iconfile.icns" "$set_dir"
fi

identity=${SIGN_IDENTITY:--}
codesign --force --options runtime --timestamp=none --entitlements "$here/entitlements.plist" \
  -s "$identity" "$app"
codesign --verify --strict --verbose=1 "$app"
echo "package-darwin: $app (version $version, $arch, signed by ${identity/#-/ad hoc})"
