#!/usr/bin/env bash
# go test for scripts/test.sh: the full log goes to _build/test/go-test.log; the console gets package
# results, failures with their messages, and skips. Tests skip only when a prerequisite that `make setup`
# installs is missing, so under CI (CI=true) a skipped test fails the stage: a green run must not hide one.
# -tags skiff_hostproc: the test builds get the hostproc backend (the agent as a host process, no
# isolation) that shipped binaries leave out; app/daemon's tests select it through SKIFF_HYPERVISOR.
#
# Skiff runs as an ordinary user, so run as root (CI) this builds every test binary as root and runs
# the engine, VM, CLI and Docker API tests as the ordinary user $SKIFF_TEST_USER (default skiff-test,
# created here): a step that needs root fails there. The rest (the agent as a host process, which
# needs root, and the packages that do not care) runs as root. Not run as root, everything runs as
# the caller. GO_TEST_PKGS runs just those packages as the caller.
set -uo pipefail
cd "$(dirname "$0")/.."
log=_build/test/go-test.log
mkdir -p "$(dirname "$log")"
: > "$log"
flags=(-v -timeout 45m -count=1 -tags skiff_hostproc)
# The engine tests that need root: those that drive the agent as a host process (backend/vm/hostproc;
# named Test…Hostproc…), those that mount a tmpfs or a bind mount to make a save fail, and the tree copy's (which leaves
# read-only directories only root's t.TempDir clean-up removes). A new one that skips as the ordinary
# user fails CI (skips count): add it here.
root_engine_tests='^(Test.*Hostproc.*|TestGuestErrorSanitised|TestLifecycleFailsWhenTheRecordCannotBeSaved|TestNetworkRecords|TestRemoveIsAtomic|TestStopFailsWhenTheRecordCannotBeSaved|TestCloneTreePreservesMetadata)$'

rc=0
if [ -n "${GO_TEST_PKGS:-}" ] || [ "$(id -u)" != 0 ]; then
  # shellcheck disable=SC2086
  go test -p 2 "${flags[@]}" "$@" ${GO_TEST_PKGS:-./...} >> "$log" 2>&1 || rc=1
else
  export SKIFF_TEST_USER=${SKIFF_TEST_USER:-skiff-test}
  if ! id -u "$SKIFF_TEST_USER" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash "$SKIFF_TEST_USER" || exit 1
  fi
  as_user() { setpriv --reuid="$SKIFF_TEST_USER" --regid="$SKIFF_TEST_USER" --init-groups "$@"; }
  # The CLI and Docker API tests use this binary instead of building one.
  bindir=$(mktemp -d /tmp/skiff-test-bin.XXXXXX) || exit 1
  alias=""
  trap 'rm -rf "$bindir"; [ -z "$alias" ] || { umount -l "$alias" && rmdir "$alias"; }' EXIT
  chmod 755 "$bindir"
  export SKIFF_KERNEL_DIR=${SKIFF_KERNEL_DIR:-$PWD/_build/kernel}
  # A checkout the user cannot reach (under /root, 0700) is bind-mounted where it can, and
  # scripts/as-user.sh runs each test binary from there.
  if ! as_user test -r "$PWD/go.mod"; then
    alias=$(mktemp -d /tmp/skiff-src.XXXXXX) && chmod 755 "$alias" && mount --bind "$PWD" "$alias" || exit 1
    export SKIFF_TEST_SRC=$PWD SKIFF_TEST_SRC_ALIAS=$alias
  fi
  kdir=${SKIFF_KERNEL_DIR/#$PWD/${alias:-$PWD}}
  if ! as_user test -r "${alias:-$PWD}/go.mod" -a -r "$kdir/amd64/manifest.json"; then
    echo "go test: user $SKIFF_TEST_USER cannot read ${alias:-$PWD} or $kdir"
    exit 1
  fi
  go build -o "$bindir/skiff" . || exit 1
  export SKIFF_TEST_SKIFF=$bindir/skiff
  mapfile -t user_pkgs < <(go list ./backend/vm/... ./backend/engine ./cli/... ./test/... | grep -v '/backend/vm/hostproc$')
  mapfile -t root_pkgs < <(go list ./... | grep -vxF -f <(printf '%s\n' "${user_pkgs[@]}"))
  echo "go test: as root: ${#root_pkgs[@]} packages and the engine's host-process tests; as $SKIFF_TEST_USER: ${#user_pkgs[@]} packages" >> "$log"
  # The tests build small programs (testinit, inotifywatch) with go: build them once as the user
  # first (during the root pass), as the tests do, so that its cold Go cache makes no test late.
  warm() { (cd "${alias:-$PWD}" && CGO_ENABLED=0 GOOS=linux GOARCH=amd64 scripts/as-user.sh "$(command -v go)" build -o /dev/null "$@"); }
  { warm -trimpath -ldflags='-s -w' ./backend/vm/qemu/internal/testinit && warm ./test/cli/testdata/inotifywatch; } > _build/test/warm.log 2>&1 &
  warming=$!
  go test -p 2 "${flags[@]}" "$@" "${root_pkgs[@]}" >> "$log" 2>&1 || rc=1
  go test -p 1 "${flags[@]}" -run "$root_engine_tests" "$@" ./backend/engine >> "$log" 2>&1 || rc=1
  wait "$warming" || { echo "go test: building the tests' programs as $SKIFF_TEST_USER failed:"; cat _build/test/warm.log; rc=1; }
  go test -p 2 "${flags[@]}" -skip "$root_engine_tests" -exec "$PWD/scripts/as-user.sh" "$@" "${user_pkgs[@]}" >> "$log" 2>&1 || rc=1
fi
grep -E '^(ok|FAIL|\?|panic:|--- FAIL|--- SKIP|    --- (FAIL|SKIP))|^ +[A-Za-z0-9_./-]+\.go:[0-9]+: ' "$log" | grep -v '^?'
skips=$(grep -cE '^ *--- SKIP' "$log")
if [ "$rc" -eq 0 ] && [ "${CI:-}" = true ] && [ "$skips" -gt 0 ]; then
  echo "go test: $skips test(s) skipped under CI: a prerequisite that make setup installs is missing"
  rc=1
fi
exit $rc
