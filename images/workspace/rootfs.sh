#!/usr/bin/env bash
# rootfs.sh DEST CS_DIR - the workspace image's whole file tree: the busybox base (images/base/lib.sh),
# this machine's node (as /usr/bin/node) with the libraries it and code-server's native modules
# link, and the code-server install CS_DIR (install-code-server.sh) as /opt/code-server/node_modules.
# /home/coder is owned by 1000:1000 (code-server writes ~/.config and ~/.local/share).
# Used by images/build-local.sh and images/workspace/Dockerfile alike.
# The activity extension (workspace/extension) is installed into that copy as a built-in
# extension (workspace/install-extension.sh).
# Env: WORKSPACE_SKIP_CODE_SERVER=1 leaves /opt/code-server out (build-local.sh adds CS_DIR as its
# own layer instead of copying ~500 MB, and the extension as another); the libraries are still
# taken from CS_DIR.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/../base/lib.sh"
[ $# = 2 ] || { echo "usage: $0 DEST CS_DIR" >&2; exit 2; }
D=$1
CS=$(cd "$2" && pwd)
[ -f "$CS/node_modules/code-server/out/node/entry.js" ] || { echo "rootfs.sh: no code-server in $CS" >&2; exit 1; }
NODE=$(readlink -f "$(command -v node)")
mkdir -p "$D/opt/code-server"
mkdir -p "$D"
install_exe "$D" "$NODE" /usr/bin/node
mapfile -t natives < <(find "$CS/node_modules" -name '*.node' -type f)
install_libs "$D" "$NODE" "${natives[@]}"
if [ "${WORKSPACE_SKIP_CODE_SERVER:-0}" != 1 ]; then
  mkdir -p "$D/opt/code-server"
  cp -a "$CS/node_modules" "$D/opt/code-server/node_modules"
  bash "$HERE/install-extension.sh" "$D/opt/code-server" # Hyperbola's activity extension, built in
  chown -R 0:0 "$D/opt/code-server"
fi
base_rootfs "$D"
# the entrypoint (entrypoint.sh: it makes code-server's extensions directory first)
install -D -m 0755 "$HERE/entrypoint.sh" "$D/usr/local/bin/hyperbola-code-server"
