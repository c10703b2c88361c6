#!/usr/bin/env bash
# Benchmarks (not tests): protocol throughput and exec latency, image pull/unpack, VM boot, container
# run/log/port-forward figures, and the log view under a flood in Chromium. Results in _build/bench/.
# SKIFF_BENCH_OLD=<an older checkout, built> adds scripts/bench-rootfs.sh: `run --rm true` and I/O in
# a container on this checkout's engine against the old one's, back to back.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/go/bin:/usr/local/go/bin:$PATH"
export SKIFF_KERNEL_DIR="${SKIFF_KERNEL_DIR:-$PWD/_build/kernel}"
# The kernels backend/engine's BenchmarkKernels compares (cold and restored `run --rm true`, bare boot).
export SKIFF_BENCH_KERNELS="${SKIFF_BENCH_KERNELS:-debian=$PWD/_build/kernel-debian,skiff=$PWD/_build/kernel}"
out=_build/bench; mkdir -p "$out"
for pkg in ./backend/agentproto ./backend/agent ./backend/images ./backend/images/disk ./backend/vm/qemu ./backend/engine ./test/cli ./test/docker; do
  [ -d "$pkg" ] || continue
  echo "=== bench $pkg"
  go test -run '^$' -bench . -benchtime 1x -count 1 -timeout 30m "$pkg" 2>&1 | tee "$out/$(basename "$pkg").txt"
done
echo "=== kernel build time (scripts/kernel-build.sh, recorded when the cached bundle was built)"
cat _build/kernel/*/.build-time 2>/dev/null | tee "$out/kernel-build.txt"
if [ -n "${SKIFF_BENCH_OLD:-}" ]; then
  echo "=== bench rootfs: this checkout against $SKIFF_BENCH_OLD, back to back"
  go build -o bin/skiff . && bash scripts/bench-rootfs.sh 2>&1 | tee "$out/rootfs.txt"
fi
if [ -f scripts/bench-logs.mjs ] || [ -f frontend/scripts/bench-logs.mjs ]; then
  echo "=== bench log view (Chromium)"
  bash scripts/test-frontend.sh --bench 2>&1 | tee "$out/logview.txt"
fi
