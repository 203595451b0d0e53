#!/usr/bin/env bash
# install-code-server.sh DEST [VERSION] - install a REAL code-server (default 4.100.3) from the npm
# registry into DEST/node_modules/code-server, needing no download beyond the npm registry.
# Used by images/build-local.sh (on the host, cached outside the repo) and by
# images/workspace/Dockerfile (in a node:20-bookworm stage) alike.
#
# 4.100.3 is the newest code-server whose engines allow Node 20 (4.103+ need Node 22).
# Its postinstall is replaced by the same steps done by hand:
#   - native modules are built with node-gyp against the running node's own headers
#     (npm_config_nodedir = the prefix node is installed under: /usr for Debian/nodesource, /usr/local in node:20)
#   - argon2: node-pre-gyp's prebuilt download is not reachable here -> rebuilt from source
#   - @vscode/ripgrep: its postinstall downloads rg -> Debian's rg (apt ripgrep) is placed instead
#   - kerberos needs libkrb5-dev; node-pty's optional compile_commands step may fail harmlessly
#   - then the rest of code-server's postinstall (vscode_install: links, extensions' npm install)
# Needs: node 20 + npm, g++, make, python3, ripgrep, libkrb5-dev. Env: RG (default: rg on PATH),
# NICE (default "nice -n 10").
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 DEST [VERSION]" >&2; exit 2; }
DEST=$1
CS_V=${2:-4.100.3}
NICE=${NICE-nice -n 10}
RG=${RG:-$(command -v rg || true)}
[ -x "$RG" ] || { echo "install-code-server.sh: ripgrep is missing (apt-get install ripgrep)" >&2; exit 1; }
NODE=$(command -v node) || { echo "install-code-server.sh: node is missing" >&2; exit 1; }
export npm_config_nodedir=${npm_config_nodedir:-$(dirname "$(dirname "$(readlink -f "$NODE")")")}
[ -f "$npm_config_nodedir/include/node/node.h" ] ||
  { echo "install-code-server.sh: no node headers under $npm_config_nodedir/include/node" >&2; exit 1; }
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
mkdir -p "$DEST" && cd "$DEST"
[ -f package.json ] || echo '{"name":"hyperbola-code-server","private":true}' > package.json
$NICE npm install --ignore-scripts --no-audit --no-fund "code-server@$CS_V"
$NICE npm rebuild argon2 --foreground-scripts
V=$DEST/node_modules/code-server/lib/vscode
cd "$V"
$NICE npm install --omit=dev --ignore-scripts --no-audit --no-fund
mkdir -p node_modules/@vscode/ripgrep/bin
cp "$RG" node_modules/@vscode/ripgrep/bin/rg
$NICE npm rebuild @parcel/watcher @vscode/spdlog native-watchdog node-pty @vscode/deviceid kerberos --foreground-scripts || true
for m in @vscode/spdlog/build/Release/spdlog.node native-watchdog/build/Release/watchdog.node \
         node-pty/build/Release/pty.node kerberos/build/Release/kerberos.node; do
  [ -f "node_modules/$m" ] || { echo "install-code-server.sh: native module missing: $m" >&2; exit 1; }
done
[ -n "$(find "$DEST/node_modules/argon2" -name '*.node' -print -quit)" ] ||
  { echo "install-code-server.sh: argon2's native module is missing" >&2; exit 1; }
# the rest of code-server's postinstall.sh (vscode_install)
ln -sfn node_modules node_modules.asar
(cd bin/remote-cli && ln -sfn code-linux.sh code-server)
(cd bin/helpers && ln -sfn browser-linux.sh browser.sh)
(cd extensions && $NICE npm install --omit=dev --unsafe-perm --no-audit --no-fund)
echo "code-server $CS_V installed in $DEST: node $DEST/node_modules/code-server/out/node/entry.js" >&2
