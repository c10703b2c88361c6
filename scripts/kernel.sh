#!/usr/bin/env bash
# Builds Skiff kernel bundles from Debian's linux-image-cloud-<arch> packages.
#
#   scripts/kernel.sh OUT_DIR [ARCH...]     (default arches: amd64 arm64)
#
# For each arch, OUT_DIR/<arch>/ (one flat directory, so it travels as an OCI artifact of files) gets:
#   vmlinuz            the kernel (bzImage on amd64; an uncompressed arm64 Image on arm64)
#   *.ko               the modules the guest needs (virtio, console, net, blk, rng, fuse,
#                      virtiofs, vsock, overlay, ext4 when not built in,
#                      balloon) and everything they depend on
#   manifest.json      {"arch","version","want":"<WANT>","kernel","modules":[load order],"files":{name:"sha256:…"}}
# Module order comes from each .ko's modinfo `depends=` (the .debs ship no modules.dep):
# dependencies first. Nothing is installed; the .deb is fetched with `apt-get download`.
# Idempotent: a bundle whose manifest matches the candidate version and whose files
# check out is left alone.
set -euo pipefail

out=${1:?usage: kernel.sh OUT_DIR [ARCH...]}
shift
arches=("$@")
[ ${#arches[@]} -gt 0 ] || arches=(amd64 arm64)

# The modules the guest agent loads, by module name (dashes and underscores are equivalent).
WANT=(
  virtio_pci_legacy_dev virtio_pci_modern_dev virtio_ring virtio virtio_pci
  virtio_console
  failover net_failover virtio_net
  virtio_blk virtio_rng virtio_balloon
  fuse virtiofs
  vsock vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport
  overlay
  ext4 # the container root's disks; built into Debian's cloud kernels (a module would be bundled with its deps)
)

die() { echo "kernel.sh: $*" >&2; exit 1; }
for tool in apt-cache apt-get dpkg-deb modinfo sha256sum; do
  command -v "$tool" >/dev/null || die "$tool not found: run \`make setup\` (packages apt, dpkg, kmod, coreutils)"
done

mkdir -p "$out"
out=$(cd "$out" && pwd)

# A bundle whose files check out is kept without asking apt (which takes seconds);
# SKIFF_KERNEL_REFRESH=1 rebuilds when Debian has a newer kernel.
bundle_ok() { # bundle_ok DIR [VERSION]
  local dest=$1 ver=${2:-}
  [ -f "$dest/manifest.json" ] || return 1
  [ -z "$ver" ] || grep -q "\"version\": \"$ver\"" "$dest/manifest.json" || return 1
  grep -qF "\"want\": \"${WANT[*]}\"" "$dest/manifest.json" || return 1 # built for another module list
  ! grep -q '"modules/' "$dest/manifest.json" || return 1
  (cd "$dest" && sed -n 's/^    "\(.*\)": "sha256:\([0-9a-f]*\)",\{0,1\}$/\2  \1/p' manifest.json | sha256sum --quiet -c - 2>/dev/null)
}

build_arch() {
  local arch=$1 pkgarch=""
  if [ -z "${SKIFF_KERNEL_REFRESH:-}" ] && bundle_ok "$out/$arch"; then
    echo "kernel.sh: $arch bundle $(sed -n 's/.*"version": "\(.*\)".*/\1/p' "$out/$arch/manifest.json") up to date"
    return
  fi
  [ "$arch" = "$(dpkg --print-architecture)" ] || pkgarch=":$arch"
  local meta="linux-image-cloud-$arch$pkgarch"
  local pkg
  pkg=$(apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}') ||
    true
  [ -n "$pkg" ] || die "cannot resolve $meta with apt-cache (for arm64: dpkg --add-architecture arm64 && apt-get update; \`make setup\` does both)"
  local name=${pkg%%:*}               # linux-image-6.1.0-56-cloud-arm64
  local ver=${name#linux-image-}      # 6.1.0-56-cloud-arm64
  local dest="$out/$arch"

  if bundle_ok "$dest" "$ver"; then
    echo "kernel.sh: $arch bundle $ver up to date"
    return
  fi

  echo "kernel.sh: building $arch bundle from $pkg"
  local work="$out/.work-$arch"
  rm -rf "$work" && mkdir -p "$work/deb" "$work/tree"
  local debs="$out/.debs"
  mkdir -p "$debs"
  if ! ls "$debs/${name}_"*.deb >/dev/null 2>&1; then
    (cd "$debs" && apt-get download -qq "$pkg") || die "apt-get download $pkg failed"
  fi
  dpkg-deb -x "$(ls "$debs/${name}_"*.deb | head -1)" "$work/tree"

  local kdir="$work/tree/lib/modules/$ver"
  local kernel="$work/tree/boot/vmlinuz-$ver"
  [ -f "$kernel" ] || die "$pkg has no boot/vmlinuz-$ver"
  [ -d "$kdir" ] || die "$pkg has no lib/modules/$ver"

  # name → path of every module in the package.
  declare -A path=()
  while IFS= read -r f; do
    local base=${f##*/}; base=${base%.ko}; base=${base//-/_}
    path[$base]=$f
  done < <(find "$kdir" -name '*.ko')
  local builtin=""
  [ -f "$kdir/modules.builtin" ] && builtin=$(sed 's#.*/##; s#\.ko$##; s#-#_#g' "$kdir/modules.builtin")

  # Depth-first, dependencies before dependents.
  declare -A done=()
  local order=()
  visit() {
    local m=${1//-/_}
    [ -z "${done[$m]:-}" ] || return 0
    done[$m]=1
    if [ -z "${path[$m]:-}" ]; then
      grep -qx "$m" <<<"$builtin" && return 0
      die "module $m is neither in $pkg nor built in"
    fi
    local deps d
    deps=$(modinfo -F depends "${path[$m]}" | tr ',' ' ')
    for d in $deps; do visit "$d"; done
    order+=("$m")
  }
  for m in "${WANT[@]}"; do visit "$m"; done

  local stage="$out/.stage-$arch"
  rm -rf "$stage" && mkdir -p "$stage"
  cp "$kernel" "$stage/vmlinuz"
  local files=("vmlinuz") mods=()
  for m in "${order[@]}"; do
    local f=${path[$m]##*/}
    cp "${path[$m]}" "$stage/$f"
    files+=("$f"); mods+=("$f")
  done

  {
    printf '{\n  "arch": "%s",\n  "version": "%s",\n  "want": "%s",\n  "kernel": "vmlinuz",\n  "modules": [\n' "$arch" "$ver" "${WANT[*]}"
    local i
    for i in "${!mods[@]}"; do
      printf '    "%s"%s\n' "${mods[$i]}" "$([ "$i" -lt $((${#mods[@]} - 1)) ] && echo ,)"
    done
    printf '  ],\n  "files": {\n'
    for i in "${!files[@]}"; do
      local sum
      sum=$(sha256sum "$stage/${files[$i]}" | cut -d' ' -f1)
      printf '    "%s": "sha256:%s"%s\n' "${files[$i]}" "$sum" "$([ "$i" -lt $((${#files[@]} - 1)) ] && echo ,)"
    done
    printf '  }\n}\n'
  } >"$stage/manifest.json"

  rm -rf "$dest" && mv "$stage" "$dest"
  rm -rf "$work"
  echo "kernel.sh: $arch bundle $ver: ${#mods[@]} modules (${mods[*]})"
}

for a in "${arches[@]}"; do
  case $a in amd64|arm64) build_arch "$a" ;; *) die "unsupported arch $a (amd64, arm64)";; esac
done
