#!/usr/bin/env bash
# Builds the Skiff guest kernel from Debian's linux-source-6.1 and writes kernel bundles.
#
#   scripts/kernel-build.sh OUT_DIR [ARCH...]     (default arches: amd64 arm64)
#
# The config is `make allnoconfig` plus kernel/skiff.config and kernel/<arch>.config, merged with
# the kernel's scripts/kconfig/merge_config.sh; the build fails if a line of the fragments does not
# make it into the final .config. Everything is built in: the bundle has no modules.
#
# OUT_DIR/<arch>/ gets a bundle in the format scripts/kernel.sh writes (backend/vm/bundle.go):
#   vmlinuz        bzImage (lz4 payload, PVH entry) on amd64; the uncompressed arm64 Image on arm64
#   config         the kernel's .config
#   manifest.json  {"arch","version","kernel","modules":[],"files":{name:"sha256:…"}}
#
# Built once, cached outside the checkout: in $SKIFF_KERNEL_CACHE (default
# ${XDG_CACHE_HOME:-~/.cache}/skiff/kernel-build), bundles/<arch>-<key>/, where key hashes the config
# fragments, this script, the linux-source version and the compiler and linker versions. A cached
# bundle is copied to OUT_DIR without building; the extracted source and the object tree
# (obj-<arch>/) stay in the cache too, so a changed config rebuilds only what it changes.
# The build runs at `nice -n ${SKIFF_KERNEL_NICE:-19}` with -j${SKIFF_KERNEL_JOBS:-$(nproc)}.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

out=${1:?usage: kernel-build.sh OUT_DIR [ARCH...]}
shift
arches=("$@")
[ ${#arches[@]} -gt 0 ] || arches=(amd64 arm64)

SRC_PKG=linux-source-6.1
SRC_TAR=/usr/src/$SRC_PKG.tar.xz
cache=${SKIFF_KERNEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/skiff/kernel-build}
jobs=${SKIFF_KERNEL_JOBS:-$(nproc)}

die() { echo "kernel-build.sh: $*" >&2; exit 1; }
for tool in make gcc flex bison bc sha256sum xz lz4 dpkg-query flock; do
  command -v "$tool" >/dev/null || die "$tool not found: run \`make setup\`"
done
srcver=$(dpkg-query -W -f='${Version}' "$SRC_PKG" 2>/dev/null) || true
[ -n "$srcver" ] && [ -f "$SRC_TAR" ] || die "$SRC_PKG is not installed ($SRC_TAR): run \`make setup\`"

mkdir -p "$out" "$cache"
out=$(cd "$out" && pwd)
cache=$(cd "$cache" && pwd)

# Checkouts share the cache: the source is extracted under .lock-src, and each arch builds under
# .lock-<arch> (so two arches can build at once, each arch once at a time).
exec {lock}>"$cache/.lock-src"
flock "$lock"

host=$(dpkg --print-architecture)
# cross ARCH: the CROSS_COMPILE prefix for ARCH on this host ("" when native).
cross() {
  [ "$1" != "$host" ] || return 0
  case $1 in amd64) echo x86_64-linux-gnu- ;; arm64) echo aarch64-linux-gnu- ;; esac
}

# The source, extracted once per linux-source version.
src=$cache/src/$SRC_PKG-$srcver
if [ ! -f "$src/Makefile" ]; then
  echo "kernel-build.sh: extracting $SRC_TAR ($srcver)"
  rm -rf "$src.tmp" && mkdir -p "$src.tmp"
  tar -xJf "$SRC_TAR" -C "$src.tmp"
  rm -rf "$src" && mv "$src.tmp/$SRC_PKG" "$src" && rmdir "$src.tmp"
fi
flock -u "$lock"

# bundle_ok DIR KEY: DIR holds the bundle of KEY and its files check out.
bundle_ok() {
  [ -f "$1/manifest.json" ] && [ "$(cat "$1/.key" 2>/dev/null)" = "$2" ] || return 1
  (cd "$1" && sed -n 's/^    "\(.*\)": "sha256:\([0-9a-f]*\)",\{0,1\}$/\2  \1/p' manifest.json | sha256sum --quiet -c - 2>/dev/null)
}

build_arch() {
  local arch=$1 karch image
  case $arch in
    amd64) karch=x86_64; image=arch/x86/boot/bzImage ;;
    arm64) karch=arm64; image=arch/arm64/boot/Image ;;
    *) die "unsupported arch $arch (amd64, arm64)" ;;
  esac
  local cc
  cc=$(cross "$arch")
  command -v "${cc}gcc" >/dev/null || die "${cc}gcc not found: run \`make setup\` (package gcc-${cc%-})"
  local key
  key=$( {
    cat kernel/skiff.config "kernel/$arch.config" scripts/kernel-build.sh
    echo "$SRC_PKG $srcver"
    "${cc}gcc" --version | head -1
    "${cc}ld" --version | head -1
  } | sha256sum | cut -c1-16)
  local bundle=$cache/bundles/$arch-$key dest=$out/$arch archlock
  exec {archlock}>"$cache/.lock-$arch"
  flock "$archlock"
  if bundle_ok "$dest" "$key"; then
    echo "kernel-build.sh: $arch bundle $(sed -n 's/.*"version": "\(.*\)".*/\1/p' "$dest/manifest.json") up to date"
    return
  fi
  if ! bundle_ok "$bundle" "$key"; then
    local obj=$cache/obj-$arch start=$SECONDS
    mkdir -p "$obj"
    echo "kernel-build.sh: building the $arch kernel from $SRC_PKG $srcver (-j$jobs, cache $cache)"
    local log=$obj/build.log
    (
      cd "$src"
      export ARCH=$karch CROSS_COMPILE=$cc
      bash scripts/kconfig/merge_config.sh -n -O "$obj" "$repo/kernel/skiff.config" "$repo/kernel/$arch.config" >"$log" 2>&1 ||
        die "merging the config failed: see $log"
      if grep -A3 '^Value requested for' "$log" >&2; then
        die "kernel/skiff.config or kernel/$arch.config asks for values the $arch config does not take (above)"
      fi
      nice -n "${SKIFF_KERNEL_NICE:-19}" make -s O="$obj" KBUILD_BUILD_USER=skiff KBUILD_BUILD_HOST=skiff \
        -j"$jobs" "${image##*/}" >>"$log" 2>&1 || { tail -30 "$log" >&2; die "the $arch kernel build failed: see $log"; }
      times >"$obj/cpu-time" # line 2: the children's user and system CPU time (not in a pipe, whose
      # subshell has no children)
    )
    local ver
    ver=$(make -s -C "$src" O="$obj" ARCH=$karch CROSS_COMPILE="$cc" kernelrelease 2>/dev/null | tail -1)
    local stage=$cache/bundles/.stage-$arch
    rm -rf "$stage" && mkdir -p "$stage"
    cp "$obj/$image" "$stage/vmlinuz"
    install -m 644 "$obj/.config" "$stage/config"
    {
      printf '{\n  "arch": "%s",\n  "version": "%s",\n  "kernel": "vmlinuz",\n  "modules": [],\n  "files": {\n' "$arch" "$ver"
      printf '    "config": "sha256:%s",\n' "$(sha256sum "$stage/config" | cut -d' ' -f1)"
      printf '    "vmlinuz": "sha256:%s"\n' "$(sha256sum "$stage/vmlinuz" | cut -d' ' -f1)"
      printf '  }\n}\n'
    } >"$stage/manifest.json"
    echo "$key" >"$stage/.key"
    # What the build took, for `make bench`: wall seconds, the compiler's CPU, jobs, load at the end.
    echo "$arch: $((SECONDS - start)) s, CPU user/system $(tail -1 "$obj/cpu-time"), -j$jobs, load $(cut -d' ' -f1-3 /proc/loadavg)" >"$stage/.build-time"
    rm -rf "$bundle" && mv "$stage" "$bundle"
    echo "kernel-build.sh: $arch kernel $ver built: $(cat "$bundle/.build-time")"
  fi
  rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
  cp "$bundle/vmlinuz" "$bundle/config" "$bundle/manifest.json" "$bundle/.key" "$bundle/.build-time" "$dest.tmp/"
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
  echo "kernel-build.sh: $arch bundle $(sed -n 's/.*"version": "\(.*\)".*/\1/p' "$dest/manifest.json") in $dest"
  exec {archlock}>&-
}

for a in "${arches[@]}"; do build_arch "$a"; done
