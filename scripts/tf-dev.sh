#!/usr/bin/env bash
# tf-dev.sh - build the provider into bin/ and write a Terraform CLI configuration that uses
# it instead of the registry, offline: dev_overrides (plan/apply use bin/ directly) plus a
# filesystem_mirror holding the same binary (so `terraform init` works without a network).
# Other providers still install from their registries.
#
# Prints the export line to use, so:   eval "$(scripts/tf-dev.sh)"
# Env: HYPERBOLA_TF_DEV_DIR (default ${XDG_CACHE_HOME:-$HOME/.cache}/hyperbola/tf-dev).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${HYPERBOLA_TF_DEV_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hyperbola/tf-dev}
VERSION=0.0.1 # the mirror's version of the local build
ADDR=registry.terraform.io/hyperbola-in/hyperbola
PLATFORM=$(go env GOOS)_$(go env GOARCH)

echo "building the provider into $ROOT/bin/ ..." >&2
(cd "$ROOT" && GOFLAGS=-buildvcs=false go build -ldflags "-X main.version=$VERSION-dev" -o bin/terraform-provider-hyperbola .)

MIRROR=$DIR/mirror
PKG=$MIRROR/$ADDR/$VERSION/$PLATFORM
rm -rf "$MIRROR"
mkdir -p "$PKG"
cp "$ROOT/bin/terraform-provider-hyperbola" "$PKG/terraform-provider-hyperbola_v$VERSION"

CONFIG=$DIR/terraformrc
cat > "$CONFIG" <<RC
# written by scripts/tf-dev.sh: the hyperbola provider from $ROOT/bin
provider_installation {
  dev_overrides {
    "hyperbola-in/hyperbola" = "$ROOT/bin"
  }
  filesystem_mirror {
    path    = "$MIRROR"
    include = ["$ADDR"]
  }
  direct {
    exclude = ["$ADDR"]
  }
}
disable_checkpoint = true
RC
echo "CLI configuration: $CONFIG (terraform warns that development overrides are in effect: expected)" >&2
echo "export TF_CLI_CONFIG_FILE=$CONFIG"
