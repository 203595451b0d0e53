#!/usr/bin/env bash
# lint-infra.sh - static checks of the Terraform in this repository, offline:
#   1. terraform fmt -check -recursive over infra/ and examples/ (a directory that does not
#      exist yet is skipped);
#   2. tflint v0.64.0, recursively over infra/, with infra/.tflint.hcl, which enables only
#      the terraform ruleset bundled in the tflint binary (no plugin download). Any finding,
#      notices included, fails the run.
# Never runs terraform init or validate, so no provider is ever downloaded.
#
# Tools: terraform from PATH (or $TERRAFORM). tflint is built with `go install` into a cache
# outside the repository the first time, then reused:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/hyperbola/tools/tflint-v0.64.0/tflint
# If terraform is not on PATH, terraform v1.5.7 (the last release that `go install` can build)
# is installed the same way, only to run `fmt`.
#
# Usage: scripts/lint-infra.sh            (exit 0: no findings)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS=${XDG_CACHE_HOME:-$HOME/.cache}/hyperbola/tools
TFLINT_VERSION=v0.64.0
TERRAFORM_FALLBACK_VERSION=v1.5.7

log() { printf '[lint-infra] %s\n' "$*" >&2; }

# go_tool MODULE VERSION BINARY -> prints the path of BINARY built from MODULE@VERSION,
# installing it into $TOOLS/BINARY-VERSION/ when it is not there yet.
go_tool() {
  local module=$1 version=$2 bin=$3 dir
  dir=$TOOLS/$bin-$version
  if [ ! -x "$dir/$bin" ]; then
    command -v go >/dev/null || { log "go is needed to install $bin $version"; exit 1; }
    log "installing $bin $version into $dir (once)"
    mkdir -p "$dir"
    # Build outside the repository so the project's go.mod is neither read nor changed.
    (cd "$TOOLS" && GOBIN=$dir GOWORK=off go install "$module@$version") >&2
  fi
  printf '%s\n' "$dir/$bin"
}

TERRAFORM=${TERRAFORM:-$(command -v terraform || true)}
if [ -z "$TERRAFORM" ]; then
  TERRAFORM=$(go_tool github.com/hashicorp/terraform "$TERRAFORM_FALLBACK_VERSION" terraform)
fi
TFLINT=$(go_tool github.com/terraform-linters/tflint "$TFLINT_VERSION" tflint)

# tflint only needs its bundled ruleset; make sure nothing it reads points at a plugin dir.
export TFLINT_PLUGIN_DIR="$TOOLS/tflint-plugins-unused"
# terraform prints a warning on every run when ~/.terraformrc is missing; give it an empty one.
TF_CLI_CONFIG_FILE=$(mktemp)
export TF_CLI_CONFIG_FILE
trap 'rm -f "$TF_CLI_CONFIG_FILE"' EXIT

cd "$ROOT"
status=0

dirs=()
for d in infra examples; do
  if [ -d "$d" ]; then dirs+=("$d"); else log "skip $d/: not present"; fi
done

if [ ${#dirs[@]} -gt 0 ]; then
  log "terraform fmt -check -recursive ${dirs[*]} ($("$TERRAFORM" version | head -n1))"
  for d in "${dirs[@]}"; do
    if ! "$TERRAFORM" fmt -check -recursive -diff "$d"; then
      log "FAIL: $d is not formatted; run: terraform fmt -recursive $d"
      status=1
    fi
  done
fi

if [ -d infra ]; then
  log "tflint $TFLINT_VERSION --recursive (infra/.tflint.hcl)"
  # An absolute --config applies the same file to every module directory found.
  if ! (cd infra && "$TFLINT" --recursive --config "$ROOT/infra/.tflint.hcl" \
    --minimum-failure-severity=notice); then
    log "FAIL: tflint reported findings in infra/"
    status=1
  fi
fi

if [ $status -eq 0 ]; then log "ok"; fi
exit $status
