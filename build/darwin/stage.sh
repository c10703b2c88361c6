#!/usr/bin/env bash
# Assembles the Skiff.app tree from parts already built; runs on Linux and macOS (no compiling of darwin
# code, no signing: build/darwin/package.sh does both around it). `make package-darwin-stage` on Linux.
#
#   bash build/darwin/stage.sh APP        (APP: the Skiff.app directory to create or replace)
#
# Environment:
#   APP_BIN     the desktop binary → Contents/MacOS/Skiff (omitted when empty: a tree to inspect)
#   CLI_BIN     the command-line tool → Contents/Resources/bin/skiff (omitted when empty). Not
#               Contents/MacOS/skiff: APFS is case-insensitive by default, where it would be Skiff.
#   KERNEL_DIR  holds the kernel bundles <arch>/manifest.json … (default _build/kernel) → copied to
#               Contents/Resources/kernel/<arch>, where the engine looks first (vm.AppKernelDir)
#   KERNEL_ARCHES  default "arm64 amd64" (Apple silicon and Intel Macs); every one must be present
#   VERSION     substituted into Info.plist (default: git describe)
# The tree is built next to APP and renamed into place, so a failure leaves no half app.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
app=${1:?usage: stage.sh APP}
kernels=${KERNEL_DIR:-$root/_build/kernel}
arches=${KERNEL_ARCHES:-arm64 amd64}
version=${VERSION:-$(git -C "$root" describe --tags --always --dirty 2>/dev/null || echo 0.0.0)}
version=${version#v}

fail() { echo "package-darwin: $*" >&2; exit 1; }
for a in $arches; do
  [ -f "$kernels/$a/manifest.json" ] ||
    fail "no $a kernel bundle in $kernels/$a (build the bundles with 'make kernel', or set KERNEL_DIR)"
done
for v in APP_BIN CLI_BIN; do
  f=${!v:-}
  [ -z "$f" ] || [ -x "$f" ] || fail "$v=$f is not an executable file"
done

mkdir -p "$(dirname "$app")"
tmp=$(mktemp -d "$(dirname "$app")/.stage-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
c="$tmp/Skiff.app/Contents"
mkdir -p "$c/MacOS" "$c/Resources/bin" "$c/Resources/kernel"

sed -e "s/{{\.Info\.ProductVersion}}/$version/g" "$here/Info.plist" > "$c/Info.plist"
(cd "$root" && GOOS= GOARCH= go run ./tools/icns -o "$c/Resources/iconfile.icns" build/appicon.png)
for a in $arches; do
  cp -R "$kernels/$a" "$c/Resources/kernel/$a"
done
[ -z "${APP_BIN:-}" ] || cp "$APP_BIN" "$c/MacOS/Skiff"
[ -z "${CLI_BIN:-}" ] || cp "$CLI_BIN" "$c/Resources/bin/skiff"

rm -rf "$app"
mv "$tmp/Skiff.app" "$app"
echo "package-darwin: staged $app (kernels: $arches from $kernels)"
