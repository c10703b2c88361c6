#!/usr/bin/env bash
# Benchmarks (not tests): protocol throughput and exec latency, image pull/unpack, VM boot, container
# run/log/port-forward figures, and the log view under a flood in Chromium. Results in _build/bench/.
# scripts/bench-rootfs.sh: `run --rm true` and I/O in a container on this checkout's engine against an
# older one's, back to back: SKIFF_BENCH_OLD=<an older checkout, built>, by default commit
# $BENCH_OLD_COMMIT (the last commit whose containers had their root on virtiofs, its engine run as the user), exported from git into
# _build/bench-old-<commit> and built there once (`make build`).
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/go/bin:/usr/local/go/bin:$PATH"
export SKIFF_KERNEL_DIR="${SKIFF_KERNEL_DIR:-$PWD/_build/kernel}"
# The kernels backend/engine's BenchmarkKernels compares (cold and restored `run --rm true`, bare boot).
export SKIFF_BENCH_KERNELS="${SKIFF_BENCH_KERNELS:-debian=$PWD/_build/kernel-debian,skiff=$PWD/_build/kernel}"
out=_build/bench; mkdir -p "$out"
BENCH_OLD_COMMIT=${BENCH_OLD_COMMIT:-dcc9129}

# old_checkout prints the directory of the built older checkout to compare against, or fails saying why.
old_checkout() {
  if [ -n "${SKIFF_BENCH_OLD:-}" ]; then echo "$SKIFF_BENCH_OLD"; return; fi
  local dir=$PWD/_build/bench-old-$BENCH_OLD_COMMIT
  if [ ! -x "$dir/bin/skiff" ]; then
    git cat-file -e "$BENCH_OLD_COMMIT^{commit}" 2>/dev/null || { echo "bench: commit $BENCH_OLD_COMMIT is not in this repository (set SKIFF_BENCH_OLD)" >&2; return 1; }
    rm -rf "$dir" && mkdir -p "$dir" || return 1
    git archive "$BENCH_OLD_COMMIT" | tar -x -C "$dir" || return 1
    make -C "$dir" build >"$out/bench-old-build.log" 2>&1 || { echo "bench: building $BENCH_OLD_COMMIT in $dir failed: $out/bench-old-build.log" >&2; return 1; }
  fi
  echo "$dir"
}
for pkg in ./backend/agentproto ./backend/agent ./backend/images ./backend/images/disk ./backend/vm/qemu ./backend/engine ./test/cli ./test/docker; do
  [ -d "$pkg" ] || continue
  echo "=== bench $pkg"
  go test -run '^$' -bench . -benchtime 1x -count 1 -timeout 30m "$pkg" 2>&1 | tee "$out/$(basename "$pkg").txt"
done
echo "=== kernel build time (scripts/kernel-build.sh, recorded when the cached bundle was built)"
cat _build/kernel/*/.build-time 2>/dev/null | tee "$out/kernel-build.txt"
if old=$(old_checkout); then
  echo "=== bench rootfs: this checkout against $old, back to back"
  go build -o bin/skiff . && SKIFF_BENCH_OLD=$old bash scripts/bench-rootfs.sh 2>&1 | tee "$out/rootfs.txt"
fi
if [ -f scripts/bench-logs.mjs ] || [ -f frontend/scripts/bench-logs.mjs ]; then
  echo "=== bench log view (Chromium)"
  bash scripts/test-frontend.sh --bench 2>&1 | tee "$out/logview.txt"
fi
