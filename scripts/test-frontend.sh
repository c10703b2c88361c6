#!/usr/bin/env bash
# Frontend tests: npm ci, Vitest, the production build, then the Playwright end-to-end run in Chromium
# against `skiff serve` with the real engine (QEMU) and cmd/skiff-testregistry.
#
#   bash scripts/test-frontend.sh            # builds bin/skiff-like binaries into a temp dir
#   SKIFF_BIN=/path/to/skiff bash scripts/test-frontend.sh   # use this skiff (its embedded UI is what is tested)
#   E2E=0 bash scripts/test-frontend.sh      # unit tests and build only
#   bash scripts/test-frontend.sh --bench [--fake] [--trace FILE]   # build, then the log-view benchmark
#                                            # (scripts/bench-logs.mjs; RATE, BENCH_SECONDS) instead of tests;
#                                            # on a shared machine: flock /tmp/skiff-bench.lock bash …
#
# The e2e starts its own registry and server with a temporary SKIFF_HOME and stops them; this script
# also kills, by pid, anything still running with that SKIFF_HOME when it exits.
set -euo pipefail
cd "$(dirname "$0")/../frontend"

E2E_TMP=$(mktemp -d /tmp/skiff-fe-test.XXXXXX)
export TMPDIR="$E2E_TMP"   # the e2e's SKIFF_HOME and Chromium profile live under here

cleanup() {
  local pids=()
  for d in /proc/[0-9]*; do
    if tr "\\0" "\\n" 2>/dev/null <"$d/environ" | grep -q "^SKIFF_HOME=$E2E_TMP/"; then pids+=("${d#/proc/}"); fi
  done
  if [ ${#pids[@]} -gt 0 ]; then
    echo "test-frontend: killing leftover processes ${pids[*]}" >&2
    kill -9 "${pids[@]}" 2>/dev/null || true
  fi
  rm -rf "$E2E_TMP"
}
trap cleanup EXIT

echo "== npm ci"
npm ci --no-audit --no-fund --loglevel=error
if [ "${1:-}" = "--bench" ]; then
  shift
  echo "== build"
  npm run build
  echo "== bench-logs (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  node ../scripts/bench-logs.mjs "$@"
  exit
fi
echo "== vitest"
npx vitest run
echo "== svelte-check"
npx svelte-check --tsconfig ./tsconfig.json --fail-on-warnings
echo "== build"
npm run build

if [ "${E2E:-1}" = "0" ]; then
  echo "test-frontend: E2E=0, skipping the browser run"
  exit 0
fi
if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "test-frontend: chromium is missing: run \`make setup\`" >&2
  exit 1
fi
echo "== e2e (Chromium, skiff serve, QEMU)"
node tests/e2e/run.mjs
