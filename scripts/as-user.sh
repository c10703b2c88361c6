#!/usr/bin/env bash
# `go test -exec` for scripts/go-test.sh: runs one test binary ($1, args after it) as the ordinary
# user $SKIFF_TEST_USER, in the package directory go test chose, with a HOME, TMPDIR and Go caches
# of that user's own. A binary the user cannot run (Go's build directory is root's only) is copied
# out first.
set -uo pipefail
u=${SKIFF_TEST_USER:?SKIFF_TEST_USER names the user to run tests as}
bin=$1; shift
home=$(getent passwd "$u" | cut -d: -f6)
if ! setpriv --reuid="$u" --regid="$u" --init-groups test -x "$bin"; then
  dir=$(mktemp -d /tmp/skiff-testbin.XXXXXX) || exit 1
  trap 'rm -rf "$dir"' EXIT
  chmod 755 "$dir"
  install -m 755 "$bin" "$dir/" || exit 1
  bin=$dir/$(basename "$bin")
fi
# scripts/go-test.sh bind-mounts a checkout the user cannot reach on SKIFF_TEST_SRC_ALIAS.
if [ -n "${SKIFF_TEST_SRC_ALIAS:-}" ]; then
  cd "${PWD/#$SKIFF_TEST_SRC/$SKIFF_TEST_SRC_ALIAS}" || exit 1
  for v in SKIFF_KERNEL_DIR SKIFF_DEBS; do
    [ -z "${!v:-}" ] || export "$v=${!v/#$SKIFF_TEST_SRC/$SKIFF_TEST_SRC_ALIAS}"
  done
fi
# Short: tests put unix sockets under TMPDIR, and sun_path holds 108 bytes.
tmp=$home/t
setpriv --reuid="$u" --regid="$u" --init-groups mkdir -p "$tmp" || exit 1
env -u XDG_CACHE_HOME -u XDG_DATA_HOME -u XDG_CONFIG_HOME -u XDG_RUNTIME_DIR -u GOCACHE -u GOMODCACHE \
  -u GOPATH -u DOCKER_CONFIG -u DOCKER_HOST -u SKIFF_HOME \
  HOME="$home" USER="$u" LOGNAME="$u" TMPDIR="$tmp" GOFLAGS=-buildvcs=false \
  setpriv --reuid="$u" --regid="$u" --init-groups "$bin" "$@"
