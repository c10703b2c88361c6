#!/usr/bin/env bash
# Stress run of the CLI against a fresh headless engine (`make stress`; not part of `make test`).
#
# Starts `bin/skiff daemon` in a fresh SKIFF_HOME, loads the test busybox image (built from Debian's
# busybox-static .deb by scripts/busybox-image), then runs STRESS_N (default 200)
# `skiff run --rm busybox sh -c 'exit 3'`, two at a time, while a background container takes
# `skiff exec` and `skiff logs` calls. Every wrong exit code is counted and its stderr printed; the
# script exits 1 if there was any (and prints the end of the engine's log). A call still running after
# 5 minutes is ended and counts as wrong (exit 124).
#
#   STRESS_N=40 make stress
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
N=${STRESS_N:-200}
SKIFF=$ROOT/bin/skiff
T="timeout 300" # a call that hangs counts as wrong (exit 124)
export SKIFF_KERNEL_DIR=${SKIFF_KERNEL_DIR:-$ROOT/_build/kernel}
[[ -x $SKIFF ]] || { echo "stress: $SKIFF missing (make build)" >&2; exit 2; }
[[ $N =~ ^[0-9]+$ ]] && ((N > 0)) || { echo "stress: STRESS_N must be a positive number, not '$N'" >&2; exit 2; }

TMP=$(mktemp -d /tmp/skiff-stress.XXXXXX) # short: the socket path must fit sun_path
export SKIFF_HOME=$TMP/home
DLOG=$TMP/daemon.log
DPID=
cleanup() {
	if [[ -n $DPID ]]; then
		kill -TERM "$DPID" 2>/dev/null
		for _ in $(seq 600); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$DPID" 2>/dev/null
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT

echo "stress: building the busybox image"
go run ./scripts/busybox-image -o "$TMP/busybox.tar" || exit 2

"$SKIFF" daemon >"$DLOG" 2>&1 &
DPID=$!
for _ in $(seq 300); do
	[[ -S $SKIFF_HOME/skiff.sock ]] && break
	kill -0 "$DPID" 2>/dev/null || { echo "stress: the daemon exited:" >&2; cat "$DLOG" >&2; exit 2; }
	sleep 0.1
done
[[ -S $SKIFF_HOME/skiff.sock ]] || { echo "stress: the daemon did not serve within 30 s" >&2; exit 2; }
"$SKIFF" load -i "$TMP/busybox.tar" >/dev/null || exit 2

wrong=0
# check WHAT WANT GOT STDERR-FILE: counts and reports a wrong exit code.
check() {
	if [[ $3 != "$2" ]]; then
		wrong=$((wrong + 1))
		echo "stress: WRONG: $1 exited $3, want $2; stderr:" >&2
		sed 's/^/    /' "$4" >&2
	fi
}

"$SKIFF" run -d --name stress-bg busybox sh -c 'while true; do echo tick; sleep 1; done' >/dev/null ||
	{ echo "stress: the background container did not start" >&2; exit 2; }

start=$(date +%s)
runs=0
for ((i = 0; i < N; i += 2)); do
	pids=()
	for j in 0 1; do
		((i + j < N)) || break
		$T "$SKIFF" run --rm busybox sh -c 'exit 3' >"$TMP/out.$j" 2>"$TMP/err.$j" &
		pids[j]=$!
	done
	if ((i % 10 == 0)); then
		$T "$SKIFF" exec stress-bg sh -c 'exit 5' >/dev/null 2>"$TMP/err.exec"
		check "exec (run $i)" 5 $? "$TMP/err.exec"
		$T "$SKIFF" logs --tail 1 stress-bg >"$TMP/out.logs" 2>"$TMP/err.logs"
		code=$?
		grep -q tick "$TMP/out.logs" || code="$code (no tick in: $(head -c 200 "$TMP/out.logs"))"
		check "logs (run $i)" 0 "$code" "$TMP/err.logs"
	fi
	for j in "${!pids[@]}"; do
		wait "${pids[j]}"
		check "run $((i + j))" 3 $? "$TMP/err.$j"
		runs=$((runs + 1))
	done
	if (((i + 2) % 20 == 0)); then echo "stress: $runs runs, $wrong wrong, $(($(date +%s) - start)) s"; fi
done
"$SKIFF" rm -f stress-bg >/dev/null 2>&1
left=$("$SKIFF" ps -aq | wc -l)
if ((left != 0)); then
	wrong=$((wrong + 1))
	echo "stress: WRONG: $left containers left after the runs (--rm):" >&2
	"$SKIFF" ps -a >&2
fi

echo "stress: $runs runs of 'run --rm … exit 3' in $(($(date +%s) - start)) s, $wrong wrong"
if ((wrong > 0)); then
	echo "stress: the engine's log ends:" >&2
	tail -n 60 "$DLOG" >&2
	exit 1
fi
