#!/usr/bin/env bash
# Idempotent set-up of a fresh Debian 12 machine for building, running and testing Skiff.
# Installs apt packages, Go modules and tools, npm packages, and builds the kernel bundles and agent.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

APT_PKGS=(
  qemu-system-x86 qemu-system-arm qemu-utils   # the Linux hypervisor backend (+ bundled virtiofsd)
  busybox-static                               # test images are built from it
  kmod cpio                                    # depmod for kernel bundles
  linux-source-6.1 gcc-aarch64-linux-gnu       # the Skiff guest kernel (scripts/kernel-build.sh)
  make gcc libc6-dev flex bison bc xz-utils lz4 libelf-dev libssl-dev
  libgtk-3-dev libwebkit2gtk-4.0-dev pkg-config  # Wails on Linux
  chromium xvfb imagemagick xdotool            # browser and window tests
  dbus-daemon                                  # private session bus for the Linux tray test
  e2fsprogs                                    # e2fsck/debugfs check the image disks in tests

  ca-certificates
)

missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  $SUDO dpkg --add-architecture arm64
  need_update=1
fi
if [ ${#missing[@]} -gt 0 ] || [ -n "${need_update:-}" ]; then
  $SUDO apt-get update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

echo "setup: go modules and tools"
go mod download
export PATH="$HOME/go/bin:$PATH"
command -v staticcheck >/dev/null || go install honnef.co/go/tools/cmd/staticcheck@v0.8.2

if [ -f frontend/package-lock.json ]; then
  echo "setup: npm packages"
  (cd frontend && { [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund --loglevel=error; })
fi

# The Docker API tests (test/docker) drive a real docker CLI; no daemon is needed. Nothing is
# downloaded here: without one those tests skip, and this says how to get one.
if command -v docker >/dev/null || [ -x /usr/local/bin/docker ]; then
  echo "setup: docker CLI $(command -v docker || echo /usr/local/bin/docker)"
else
  cat >&2 <<'MSG'
setup: WARNING: no docker CLI (test/docker skips without one). Get one of:
  - the static CLI from https://download.docker.com/linux/static/stable/<arch>/docker-28.*.tgz:
    tar -xzf docker-28.*.tgz docker/docker && sudo install docker/docker /usr/local/bin/docker
  - Debian's package (CLI 20.10, API 1.41, which Skiff also serves): sudo apt-get install docker.io
    (then `sudo systemctl disable --now docker` if you do not want its daemon)
MSG
fi

# Docker Compose v2 for test/docker, built once from the Go module proxy into ~/.docker/cli-plugins.
bash scripts/compose.sh

# Test images are built from Debian's busybox-static .debs (amd64 and arm64).
bash scripts/fetch-debs.sh _build/debs
# Guest agents and kernel bundles (cached; quick when present).
make -s agent kernel
echo "setup: done"
