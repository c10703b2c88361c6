#!/usr/bin/env bash
# Benchmark (not a test): the container root on disks (this checkout) against an older checkout, run
# back to back in one session: two headless engines side by side, each in its own SKIFF_HOME, the
# same busybox image loaded in both, and every measurement taken on one engine then the other, the
# order swapped each round, so both see the same machine load.
#
#   SKIFF_BENCH_OLD=/work/wt-old bash scripts/bench-rootfs.sh
#
# SKIFF_BENCH_OLD is a checkout built with `make build` (its bin/skiff is used; `make bench` builds
# commit dcc9129 for it unless told otherwise); without it the script measures this checkout alone.
# Both must be built (`make build`).
#
# Measured (host wall time of each call; medians and all samples printed):
#   run-rm       `skiff run --rm busybox true`, RUNS rounds (default 10) after one warm-up run (the
#                first run of an engine builds the image's initramfs and the boot snapshot)
#   in a running container (`skiff exec`), IO rounds (default 3):
#   exec-true    `exec c true`: the exec's own cost, included in every figure below
#   write        dd 256 MiB of zeros to /w, conv=fsync
#   read         dd /w to /dev/null after `sync` and the guest's drop_caches (not timed); the host's
#                page cache is left alone, so this is the guest's cold read through its device
#   files        10,000 files of 2 bytes in a new directory (busybox sh, no fork per file)
#   files-sync   `sync` right after, in its own exec
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-10}
IO=${IO:-3}
export SKIFF_KERNEL_DIR=${SKIFF_KERNEL_DIR:-$ROOT/_build/kernel}

names=(new)
bins=("$ROOT/bin/skiff")
if [[ -n ${SKIFF_BENCH_OLD:-} ]]; then
	names+=(old)
	bins+=("$SKIFF_BENCH_OLD/bin/skiff")
fi
for b in "${bins[@]}"; do
	[[ -x $b ]] || { echo "bench-rootfs: $b missing (make build there)" >&2; exit 2; }
done

TMP=$(mktemp -d /tmp/skiff-rb.XXXXXX) # short: the socket paths must fit sun_path
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do
		for _ in $(seq 600); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
	done
	rm -rf "$TMP"
}
trap cleanup EXIT

# sk I ARGS...: the CLI of engine I.
sk() {
	local i=$1
	shift
	SKIFF_HOME=$TMP/${names[i]} "${bins[i]}" "$@"
}

go run ./scripts/busybox-image -o "$TMP/busybox.tar" || exit 2
for i in "${!names[@]}"; do
	mkdir -p "$TMP/${names[i]}"
	# Its own cache too (initramfs, boot snapshots), shared with no other engine.
	SKIFF_HOME=$TMP/${names[i]} XDG_CACHE_HOME=$TMP/${names[i]}/cache "${bins[i]}" daemon >"$TMP/${names[i]}.log" 2>&1 &
	pids+=($!)
done
for i in "${!names[@]}"; do
	sock=$TMP/${names[i]}/skiff.sock
	for _ in $(seq 300); do [[ -S $sock ]] && break; sleep 0.1; done
	[[ -S $sock ]] || { echo "bench-rootfs: engine ${names[i]} did not serve:" >&2; cat "$TMP/${names[i]}.log" >&2; exit 2; }
	sk "$i" load -i "$TMP/busybox.tar" >/dev/null || exit 2
	sk "$i" run --rm busybox true || { echo "bench-rootfs: warm-up run failed on ${names[i]}" >&2; exit 2; }
done

declare -A samples # "metric name" → space-separated seconds
# timed METRIC I ARGS...: runs the CLI of engine I and records its wall time.
timed() {
	local m=$1 i=$2
	shift 2
	local t0=$EPOCHREALTIME
	sk "$i" "$@" >"$TMP/out" 2>&1 || { echo "bench-rootfs: ${names[i]}: $*:" >&2; cat "$TMP/out" >&2; exit 1; }
	samples["$m ${names[i]}"]+="$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.3f", b-a}') "
}
# order R: the engines' indices, reversed on odd rounds.
order() {
	if (($1 % 2 == 0)); then echo "${!names[@]}"; else echo "${!names[@]}" | rev; fi
}

echo "bench-rootfs: run --rm busybox true, $RUNS rounds"
for ((r = 0; r < RUNS; r++)); do
	for i in $(order "$r"); do timed run-rm "$i" run --rm busybox true; done
done

echo "bench-rootfs: I/O in a running container, $IO rounds"
for i in "${!names[@]}"; do sk "$i" run -d --name io busybox sleep 100000 >/dev/null || exit 1; done
files='mkdir /fs && i=0 && while [ $i -lt 10000 ]; do echo x >/fs/f$i; i=$((i+1)); done'
for ((r = 0; r < IO; r++)); do
	for i in $(order "$r"); do
		sk "$i" exec io sh -c 'rm -rf /w /fs; sync' || exit 1
		timed exec-true "$i" exec io true
		timed write "$i" exec io dd if=/dev/zero of=/w bs=1M count=256 conv=fsync
		sk "$i" exec io sh -c 'sync && echo 3 >/proc/sys/vm/drop_caches' ||
			echo "bench-rootfs: ${names[i]}: drop_caches failed: this read is warm" >&2
		timed read "$i" exec io dd if=/w of=/dev/null bs=1M
		timed files "$i" exec io sh -c "$files"
		timed files-sync "$i" exec io sync
	done
done
for i in "${!names[@]}"; do sk "$i" rm -f io >/dev/null; done

echo "bench-rootfs: $(date -u '+%F %T UTC'), load $(cut -d' ' -f1-3 /proc/loadavg), seconds (median: samples)"
for m in run-rm exec-true write read files files-sync; do
	line=$(printf '%-11s' "$m")
	for n in "${names[@]}"; do
		s=${samples["$m $n"]:-}
		med=$(tr ' ' '\n' <<<"$s" | grep . | sort -n | awk '{a[NR]=$1} END{if (NR) print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
		line+="  $n ${med:-?}: $s"
	done
	echo "$line"
done
