#!/usr/bin/env bash
# The whole test suite, in the order a failure is cheapest to find. Called by `make test` after setup.
# Each stage is timed; the last line counts the stages that passed and failed.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/go/bin:/usr/local/go/bin:$PATH"
export SKIFF_KERNEL_DIR="${SKIFF_KERNEL_DIR:-$PWD/_build/kernel}"
mkdir -p _build/test
passed=0 failed=0 failures=()

stage() { # stage NAME CMD...
  local name=$1; shift
  local start=$SECONDS
  echo "=== stage: $name"
  if "$@"; then
    passed=$((passed + 1)); echo "=== ok: $name ($((SECONDS - start)) s)"
  else
    failed=$((failed + 1)); failures+=("$name"); echo "=== FAILED: $name ($((SECONDS - start)) s)"
  fi
}

# The committed frontend/src/lib/api.gen.ts, app/client/services.gen.go and the method list of
# docs/contracts.md must be what tools/tsgen generates from the Go services now.
tsgen_current() {
  local ts gofile doc rc
  ts=$(mktemp) && gofile=$(mktemp) && doc=$(mktemp) || return 1
  cp docs/contracts.md "$doc" &&
    go run ./tools/tsgen -o "$ts" -go "$gofile" -doc "$doc" &&
    diff -u frontend/src/lib/api.gen.ts "$ts" && diff -u app/client/services.gen.go "$gofile" &&
    diff -u docs/contracts.md "$doc"
  rc=$?
  rm -f "$ts" "$gofile" "$doc"
  [ $rc -eq 0 ] || echo "the generated clients are out of date: run make tsgen"
  return $rc
}

stage "build agent" make -s agent
stage "vet" bash -c 'go vet ./... && go vet -tags skiff_hostproc ./app/daemon'
stage "generated clients" tsgen_current
# go.mod lists the modules the code imports as direct requirements, and nothing tidy would change.
stage "go.mod tidy" bash -c 'go mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }'
stage "staticcheck" staticcheck ./...
stage "darwincheck" make -s darwincheck
# Go tests: unit, agent as a host process, images against an in-process registry, QEMU/TCG boots,
# the engine, and the CLI driving a real daemon. -p 2: the machine has 2 cores and QEMU under TCG is CPU-bound.
stage "go test" bash scripts/go-test.sh
# A count, not a duration: Go 1.26's fuzz coordinator can report its own -fuzztime deadline as a failure
# (golang/go#75804, fixed in 1.27); 300,000 runs take ~15-30 s here.
stage "fuzz agentproto (brief)" go test -run '^$' -fuzz '^FuzzDecode$' -fuzztime 300000x ./backend/agentproto
# The boot parameters read back from what the host writes (ParseBoot(Args(b)) == b); ~5-10 s here.
stage "fuzz boot parameters (brief)" go test -run '^$' -fuzz '^FuzzParseBoot$' -fuzztime 100000x ./backend/agentproto
stage "frontend (vitest + playwright)" bash scripts/test-frontend.sh
stage "desktop window (Xvfb)" bash scripts/test-window.sh
stage "desktop window attached to a daemon (Xvfb)" env WINDOW_ATTACHED=1 SKIFF_GUI_BIN="$PWD/_build/skiff-gui" \
  WINDOW_SHOT="$PWD/_build/test/window-attached.png" bash scripts/test-window.sh

echo
if [ $failed -gt 0 ]; then echo "failed stages: ${failures[*]}"; fi
echo "stages: $passed passed, $failed failed"
[ $failed -eq 0 ]
