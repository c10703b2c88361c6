#!/usr/bin/env bash
# The real desktop window under Xvfb: builds the Wails app (`-tags desktop,production`), starts it with
# a temporary SKIFF_HOME (it runs the engine and serves the socket), creates a container through the
# CLI, and checks that
#   - the window maps (xdotool search),
#   - a screenshot (ImageMagick `import -window root`) is not blank (pixel standard deviation),
#   - the containers list shows the container: the page puts the counts in the window title
#     ("Skiff — 1 containers, 0 running"), read with xdotool,
# then opens Settings with Ctrl+, and keeps a screenshot of it (${WINDOW_SHOT%.png}-settings.png).
# With WINDOW_ATTACHED=1 a `skiff daemon` holds the data dir first, so the window attaches to its
# engine over the socket (bridge.Relay passing the window's calls and events through) and the same
# checks run. The screenshot is kept at ${WINDOW_SHOT:-_build/test/window.png}. Every process
# started here is stopped by pid on exit.
#
#   bash scripts/test-window.sh      # SKIFF_GUI_BIN=/path/to/skiff-gui to skip the build
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$HOME/go/bin:/usr/local/go/bin:$PATH"

for tool in Xvfb xdotool import; do
  command -v "$tool" >/dev/null || { echo "test-window: $tool is missing: run \`make setup\`" >&2; exit 1; }
done

TMP=$(mktemp -d /tmp/skiff-window.XXXXXX)
SHOT=${WINDOW_SHOT:-$ROOT/_build/test/window.png}
mkdir -p "$(dirname "$SHOT")"
PIDS=()
cleanup() {
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill -TERM "${PIDS[i]}" 2>/dev/null || true; done
  for _ in $(seq 1 100); do
    local alive=0
    for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "test-window: FAIL: $*" >&2; echo "--- gui log (tail)" >&2; tail -30 "$TMP/gui.log" >&2 || true; exit 1; }

# 1. The app: frontend first (it is embedded), then the Wails binary.
GUI=${SKIFF_GUI_BIN:-}
if [ -z "$GUI" ]; then
  if [ ! -f frontend/dist/index.html ]; then
    (cd frontend && { [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error; } && npm run build)
  fi
  mkdir -p _build
  echo "test-window: go build -tags desktop,production -o _build/skiff-gui ."
  go build -tags desktop,production -o _build/skiff-gui .
  GUI=$ROOT/_build/skiff-gui
fi
CLI=${SKIFF_BIN:-}
if [ -z "$CLI" ]; then
  go build -o "$TMP/skiff" .
  CLI=$TMP/skiff
fi
go build -o "$TMP/skiff-testregistry" ./cmd/skiff-testregistry

# 2. A display.
DISP=":$((90 + RANDOM % 100))"
Xvfb "$DISP" -screen 0 1280x800x24 -nolisten tcp >"$TMP/xvfb.log" 2>&1 &
PIDS+=($!)
export DISPLAY=$DISP
for _ in $(seq 1 50); do xdotool getdisplaygeometry >/dev/null 2>&1 && break; sleep 0.1; done
xdotool getdisplaygeometry >/dev/null 2>&1 || fail "Xvfb did not start on $DISP"

# 3. A registry with the test images.
"$TMP/skiff-testregistry" --addr 127.0.0.1:0 >"$TMP/registry.out" 2>"$TMP/registry.log" &
PIDS+=($!)
for _ in $(seq 1 300); do [ -s "$TMP/registry.out" ] && break; sleep 0.1; done
REG=$(head -1 "$TMP/registry.out")
[ -n "$REG" ] || fail "the test registry printed no address"

# 4. The window, with its own engine (or, WINDOW_ATTACHED=1, a daemon's).
export SKIFF_HOME=$TMP/home
mkdir -p "$SKIFF_HOME"
export SKIFF_KERNEL_DIR=${SKIFF_KERNEL_DIR:-$ROOT/_build/kernel}
if [ "${WINDOW_ATTACHED:-}" = 1 ]; then
  "$CLI" daemon >"$TMP/daemon.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do [ -S "$SKIFF_HOME/skiff.sock" ] && break; sleep 0.1; done
  [ -S "$SKIFF_HOME/skiff.sock" ] || fail "the daemon did not serve $SKIFF_HOME/skiff.sock"
fi
export NO_AT_BRIDGE=1 WEBKIT_DISABLE_COMPOSITING_MODE=1 LIBGL_ALWAYS_SOFTWARE=1
if command -v dbus-run-session >/dev/null; then
  dbus-run-session -- "$GUI" >"$TMP/gui.log" 2>&1 &
else
  "$GUI" >"$TMP/gui.log" 2>&1 &
fi
PIDS+=($!)

WID=""
for _ in $(seq 1 300); do
  WID=$(xdotool search --onlyvisible --name '^Skiff' 2>/dev/null | head -1 || true)
  [ -n "$WID" ] && break
  sleep 0.1
done
[ -n "$WID" ] || fail "no Skiff window mapped within 30 s"
echo "test-window: window $WID mapped: $(xdotool getwindowname "$WID")"
if [ "${WINDOW_ATTACHED:-}" = 1 ]; then
  grep -q "attaching to the running engine" "$TMP/gui.log" || fail "the window did not attach to the daemon's engine"
fi

# 5. A container made through the CLI (talking to the window's engine over the socket).
for _ in $(seq 1 100); do [ -S "$SKIFF_HOME/skiff.sock" ] && break; sleep 0.1; done
"$CLI" pull -q "$REG/busybox:latest" >/dev/null || fail "skiff pull failed"
"$CLI" create --name window-test "$REG/busybox:latest" echo hi >/dev/null || fail "skiff create failed"

TITLE=""
for _ in $(seq 1 150); do
  TITLE=$(xdotool getwindowname "$WID" 2>/dev/null || true)
  [[ "$TITLE" == *"1 containers"* ]] && break
  sleep 0.1
done
[[ "$TITLE" == *"1 containers"* ]] || fail "the window title never counted the container (last: \"$TITLE\")"
echo "test-window: title \"$TITLE\""
sleep 0.5 # let the row paint

# 6. A screenshot that is not blank.
import -window root "$SHOT"
SD=$(convert "$SHOT" -colorspace Gray -format '%[fx:standard_deviation]' info:)
echo "test-window: screenshot $SHOT, gray standard deviation $SD"
awk -v sd="$SD" 'BEGIN { exit !(sd > 0.02) }' || fail "the screenshot looks blank (standard deviation $SD)"

# 7. Settings (Ctrl+, as ⌘, on a Mac): a screenshot of the view is kept beside the first one.
xdotool windowactivate --sync "$WID" 2>/dev/null || xdotool windowfocus "$WID" 2>/dev/null || true
xdotool key --window "$WID" ctrl+comma
sleep 2
SET_SHOT=${SHOT%.png}-settings.png
import -window root "$SET_SHOT"
echo "test-window: settings screenshot $SET_SHOT"
echo "test-window: ok"
