#!/usr/bin/env bash
# install-extension.sh CS_ROOT - install Hyperbola's activity extension (images/workspace/extension)
# as a BUILT-IN extension of the code-server under CS_ROOT (CS_ROOT/node_modules/code-server):
# code-server's server scans lib/vscode/extensions/*/package.json as its system extensions
# (nothing lists them: product.json's builtInExtensions is read only by development builds), so
# the extension is on by default and the user cannot uninstall it (only disable it).
# Only the runtime files are copied (no tests); root-owned, world-readable.
# Used by rootfs.sh (production), build-local.sh (its own layer) and internal/activity's IDE test.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# = 1 ] || { echo "usage: $0 CS_ROOT" >&2; exit 2; }
EXT=$1/node_modules/code-server/lib/vscode/extensions/hyperbola-activity
mkdir -p "$EXT"
rm -rf "${EXT:?}"/*
install -m 0644 "$HERE/extension/package.json" "$HERE/extension/extension.js" "$HERE/extension/logic.js" "$EXT/"
