#!/usr/bin/env bash
# build-local.sh OUT_DIR - build Hyperbola's images on this machine, without Docker or a registry,
# as docker-archive tars that `ctr -n k8s.io images import` accepts (scripts/localkube/up.sh
# imports them into the real node's containerd when K8SENV_REALNODE=1):
#   OUT_DIR/pause.tar      localhost/pause:3.10.2        the pod sandbox (Kubernetes' pause.c, gcc -static)
#   OUT_DIR/backup.tar     localhost/hyperbola-backup:1  busybox + zip/unzip, uid 1000 (backup/rootfs.sh)
#   OUT_DIR/workspace.tar  localhost/hyperbola-workspace:4.100.3  real code-server on node 20 (workspace/rootfs.sh)
#                          with the built-in activity extension (workspace/extension) as its own layer
#   OUT_DIR/images.env     the names above as PAUSE_IMAGE=, BACKUP_IMAGE=, WORKSPACE_IMAGE= (written last)
# Never a :latest tag: the node has no registry, and a non-latest tag defaults to IfNotPresent.
# build-local.sh --key prints a hash of everything the images are built from (these files,
# the versions, this machine's busybox/zip/unzip/node): scripts/localkube/build-node.sh keys its cache by it.
# The code-server npm install is cached outside the repo, keyed by version, node and install script.
# Needs (apt): busybox-static zip unzip gcc libc6-dev ripgrep libkrb5-dev g++ make python3, node 20 + npm, go.
# Env: CS_VERSION (4.100.3), K8S_VERSION (pause.c from k8s.io/kubernetes, 1.36.3),
#      CODE_SERVER_CACHE (default $HYPERBOLA_LOCALKUBE_CACHE/code-server-<key>), GOCACHE.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CS_V=${CS_VERSION:-4.100.3}
K8S_V=${K8S_VERSION:-1.36.3}
PAUSE_V=3.10.2
BACKUP_TAG=1
PAUSE_IMAGE=localhost/pause:$PAUSE_V
BACKUP_IMAGE=localhost/hyperbola-backup:$BACKUP_TAG
WORKSPACE_IMAGE=localhost/hyperbola-workspace:$CS_V
BASE=${HYPERBOLA_LOCALKUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hyperbola/localkube}
export GOFLAGS=-buildvcs=false GOTOOLCHAIN=local

host_inputs() { # what the images copy from this machine
  dpkg-query -W -f '${Package} ${Version}\n' busybox-static zip unzip 2>/dev/null || true
  echo "node $(node --version 2>/dev/null) $(command -v rg) $(rg --version 2>/dev/null | head -n 1)"
}
key() {
  {
    echo "cs=$CS_V k8s=$K8S_V pause=$PAUSE_IMAGE backup=$BACKUP_IMAGE workspace=$WORKSPACE_IMAGE"
    host_inputs
    (cd "$HERE" && find . -type f ! -name README.md ! -name '*.tmp' | LC_ALL=C sort | xargs sha256sum)
  } | sha256sum | cut -c1-12
}
if [ "${1:-}" = --key ]; then key; exit 0; fi
[ $# = 1 ] || { echo "usage: $0 OUT_DIR | --key" >&2; exit 2; }
OUT=$1
log() { echo "[images] $*" >&2; }
T() { # label cmd... : timed
  local l=$1 s=$SECONDS; shift
  "$@"; log "$l: $((SECONDS - s))s"
}
for c in busybox zip unzip gcc node npm rg go; do
  command -v "$c" > /dev/null || { echo "build-local.sh: $c is missing" >&2; exit 1; }
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT/images.env"
W=$OUT/.work
rm -rf "$W"; mkdir -p "$W"
s0=$SECONDS
mktar() { # DIR OUT.tar [tar flags...] : deterministic order and times, numeric ids as on disk
  local d=$1 o=$2; shift 2
  tar -C "$d" --sort=name --numeric-owner --mtime=@0 "$@" -cf "$o" .
}

# ---- mkimage (go-containerregistry; its own module, so the main module gains no dependency) ----
T "mkimage" bash -c 'cd "$1" && CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags "-s -w" -o "$2" .' _ "$HERE/mkimage" "$W/mkimage"
MK=$W/mkimage

# ---- pause: Kubernetes' own pause.c, static ----
build_pause() {
  local dir pc
  dir=$(cd "$(mktemp -d)" && go mod download -json "k8s.io/kubernetes@v$K8S_V" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  pc=$dir/build/pause/linux/pause.c
  [ -f "$pc" ] || { echo "build-local.sh: no pause.c in k8s.io/kubernetes@v$K8S_V" >&2; return 1; }
  mkdir -p "$W/pause"
  nice -n 10 gcc -Os -static -DVERSION="v$PAUSE_V-hyperbola" -o "$W/pause/pause" "$pc"
  strip "$W/pause/pause"
  mktar "$W/pause" "$W/pause-layer.tar" --owner=0 --group=0
  "$MK" -t "$PAUSE_IMAGE" -o "$OUT/pause.tar" -entrypoint /pause -user 65535:65535 "$W/pause-layer.tar"
}
T "pause image" build_pause

# ---- backup ----
build_backup() {
  bash "$HERE/backup/rootfs.sh" "$W/backup"
  mktar "$W/backup" "$W/backup-layer.tar"
  "$MK" -t "$BACKUP_IMAGE" -o "$OUT/backup.tar" -user 1000:1000 -cmd /bin/sh "$W/backup-layer.tar"
}
T "backup image" build_backup

# ---- workspace: code-server installed from npm (cached), node, busybox ----
CS_KEY=$(cat "$HERE/workspace/install-code-server.sh" | sha256sum | cut -c1-8)
CS=${CODE_SERVER_CACHE:-$BASE/code-server-$CS_V-node$(node --version)-$CS_KEY}
if [ ! -f "$CS/.complete" ]; then
  rm -rf "$CS.tmp"
  log "installing code-server $CS_V from npm into $CS (cold: ~1-3 min)"
  T "code-server npm install" bash "$HERE/workspace/install-code-server.sh" "$CS.tmp" "$CS_V"
  touch "$CS.tmp/.complete"
  rm -rf "$CS"; mv "$CS.tmp" "$CS"
fi
build_workspace() {
  WORKSPACE_SKIP_CODE_SERVER=1 bash "$HERE/workspace/rootfs.sh" "$W/ws" "$CS"
  mktar "$W/ws" "$W/ws-base.tar"
  # code-server as its own layer, root-owned, at /opt/code-server/node_modules (as workspace/rootfs.sh lays it out)
  tar -C "$CS" --sort=name --numeric-owner --owner=0 --group=0 --mtime=@0 \
    --transform 's,^\./node_modules,./opt/code-server/node_modules,' -cf "$W/ws-cs.tar" ./node_modules
  # the activity extension as a third, tiny layer, so changing it never re-packs code-server.
  # Its directories' time is a hash of the extension, not 0: VS Code caches its scan of the
  # built-in extensions in the user's data (on the workspace's volume) keyed by, among others,
  # the mtime of lib/vscode/extensions, and would keep the old list after an image update.
  mkdir -p "$W/ws-ext/opt/code-server"
  bash "$HERE/workspace/install-extension.sh" "$W/ws-ext/opt/code-server"
  local ext_mtime
  ext_mtime=$((16#$( (cd "$HERE/workspace/extension" && cat package.json extension.js logic.js) | sha256sum | cut -c1-7) + 1000000000))
  tar -C "$W/ws-ext" --sort=name --numeric-owner --owner=0 --group=0 --mtime=@"$ext_mtime" \
    -cf "$W/ws-ext.tar" ./opt
  "$MK" -t "$WORKSPACE_IMAGE" -o "$OUT/workspace.tar" \
    -entrypoint /usr/local/bin/hyperbola-code-server \
    -user 1000:1000 -workdir /home/coder -env HOME=/home/coder -env SHELL=/bin/sh \
    "$W/ws-base.tar" "$W/ws-cs.tar" "$W/ws-ext.tar"
}
T "workspace image" build_workspace

rm -rf "$W"
cat > "$OUT/images.env.tmp" <<EOF
PAUSE_IMAGE=$PAUSE_IMAGE
BACKUP_IMAGE=$BACKUP_IMAGE
WORKSPACE_IMAGE=$WORKSPACE_IMAGE
EOF
mv "$OUT/images.env.tmp" "$OUT/images.env"
log "images in $OUT ($((SECONDS - s0))s): $(cd "$OUT" && ls -s --block-size=M ./*.tar | tr '\n' ' ')"
