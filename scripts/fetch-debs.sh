#!/usr/bin/env bash
# fetch-debs.sh [DIR] — downloads Debian's busybox-static .debs for amd64 and arm64 into DIR
# (default _build/debs). The test images (internal/testutil) are built from them. Idempotent: a .deb
# already present for an architecture is kept. Needs the arm64 dpkg architecture (scripts/setup.sh adds it).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-_build/debs}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  $SUDO dpkg --add-architecture arm64
  $SUDO apt-get update -qq
fi

for arch in amd64 arm64; do
  if compgen -G "$dir/busybox-static_*_${arch}.deb" >/dev/null; then
    continue
  fi
  echo "fetch-debs: busybox-static:$arch"
  tmp=$(mktemp -d "$dir/.fetch-XXXXXX")
  # apt-get download writes into the current directory; as root it warns that _apt cannot read it.
  if ! (cd "$tmp" && apt-get download -qq "busybox-static:$arch" 2>/dev/null) ||
     ! compgen -G "$tmp/busybox-static_*.deb" >/dev/null; then
    # The package lists may be missing or stale (fresh machine): refresh once and retry.
    $SUDO apt-get update -qq
    (cd "$tmp" && apt-get download -qq "busybox-static:$arch")
  fi
  # Debian names the file with an epoch escaped as %3a; the builder globs busybox-static_*_<arch>.deb.
  mv "$tmp"/busybox-static_*.deb "$dir"/
  rmdir "$tmp"
done
ls "$dir"/busybox-static_*.deb
