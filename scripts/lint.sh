#!/usr/bin/env bash
# golangci-lint over the module, with the config checked in (.golangci.yml). The pinned version is
# built from the Go module proxy once, into a cache outside the repo keyed by its version
# (~4 min cold on 2 cores), and reused after that.
set -euo pipefail
cd "$(dirname "$0")/.."
version=v2.15.0
cache="${HYPERBOLA_CACHE:-$HOME/.cache/hyperbola}/tools/golangci-lint-$version"
bin="$cache/golangci-lint"
if [ ! -x "$bin" ]; then
  echo "building golangci-lint $version into $cache" >&2
  mkdir -p "$cache"
  GOTOOLCHAIN=local GOBIN="$cache" go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$version"
fi
exec "$bin" run "$@" ./...
