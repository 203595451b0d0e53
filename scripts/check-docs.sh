#!/usr/bin/env bash
# check-docs.sh - fail when the generated provider docs (docs/index.md, docs/resources/,
# docs/data-sources/) are stale: tfplugindocs renders the docs again into a temporary
# directory from the provider's schema and examples/, and the result must equal docs/.
# Fix with `make generate` (go tool -modfile=tools/go.mod tfplugindocs generate).
#
# Offline: tfplugindocs (tools/go.mod) runs the terraform on PATH (or $TERRAFORM), never
# a downloaded one (no --tf-version). Hand-written pages in docs/ are not checked.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TERRAFORM=${TERRAFORM:-$(command -v terraform || true)}
if [ -z "$TERRAFORM" ]; then
  echo "check-docs: terraform is not on PATH (tfplugindocs needs it for the provider schema)" >&2
  exit 1
fi
export PATH="$(dirname "$TERRAFORM"):$PATH" CHECKPOINT_DISABLE=1
# terraform warns on every run when the CLI config file is missing: give it an empty one
CLI_CONFIG=$(mktemp)
export TF_CLI_CONFIG_FILE=$CLI_CONFIG

OUT=$(mktemp -d)
trap 'rm -rf "$OUT" "$CLI_CONFIG"' EXIT
# tfplugindocs joins --rendered-website-dir to the provider dir: give it a relative path
REL=$(realpath -m --relative-to="$ROOT" "$OUT/docs")

if ! log=$(go tool -modfile=tools/go.mod tfplugindocs generate --provider-name hyperbola \
  --rendered-website-dir "$REL" 2>&1); then
  echo "$log" >&2
  echo "check-docs: tfplugindocs generate failed" >&2
  exit 1
fi

status=0
for f in index.md resources data-sources; do
  if [ ! -e "$OUT/docs/$f" ] && [ ! -e "docs/$f" ]; then continue; fi
  if ! diff -ru "docs/$f" "$OUT/docs/$f"; then status=1; fi
done
if [ $status != 0 ]; then
  echo "check-docs: docs/ is stale: run 'make generate' and commit the result" >&2
  exit 1
fi
echo "check-docs: docs/ is up to date"
