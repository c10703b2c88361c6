#!/usr/bin/env bash
# Builds Docker Compose v2 (github.com/docker/compose/v5, from the Go module proxy) once into a cache
# outside the checkout and installs it as a docker CLI plugin, which test/docker drives: for every
# user when run as root (make setup: /usr/local/lib/docker/cli-plugins, a directory the docker CLI
# searches whatever DOCKER_CONFIG says; the tests run as an ordinary user), else for the current user
# (~/.docker/cli-plugins). Idempotent: quick when built.
# `go install module@version` refuses compose's go.mod (it has replace directives), so the module
# is downloaded and its ./cmd built from the module's own directory.
set -euo pipefail
VERSION="${COMPOSE_VERSION:-v5.6.0}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/skiff/compose-$VERSION"
PLUGIN="$HOME/.docker/cli-plugins/docker-compose"
if [ "$(id -u)" = 0 ]; then
  PLUGIN=/usr/local/lib/docker/cli-plugins/docker-compose
fi

if [ ! -x "$CACHE/docker-compose" ]; then
  echo "compose: building docker compose $VERSION (once; cached in $CACHE)"
  dir=$(GOFLAGS=-mod=mod go mod download -json "github.com/docker/compose/v5@$VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] || { echo "compose: go mod download gave no directory" >&2; exit 1; }
  mkdir -p "$CACHE"
  (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath \
    -ldflags "-s -w -X github.com/docker/compose/v5/internal.Version=$VERSION" \
    -o "$CACHE/docker-compose.tmp" ./cmd)
  mv "$CACHE/docker-compose.tmp" "$CACHE/docker-compose"
fi
mkdir -p "$(dirname "$PLUGIN")"
if ! cmp -s "$CACHE/docker-compose" "$PLUGIN" 2>/dev/null; then
  install -m 0755 "$CACHE/docker-compose" "$PLUGIN"
fi
echo "compose: $PLUGIN ($VERSION)"
