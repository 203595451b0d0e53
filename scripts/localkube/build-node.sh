#!/usr/bin/env bash
# build-node.sh - build what the local cluster's optional REAL node needs (K8SENV_REALNODE=1 up.sh),
# from the Go module proxy and the npm registry, into caches OUTSIDE the repo; rebuilds only what is missing:
#   node-containerd<v>-runc<v>-cni<v>-lpp<v>/bin      containerd, ctr, containerd-shim-runc-v2, runc (cgo +
#                                                     seccomp), local-path-provisioner
#   node-containerd<v>-runc<v>-cni<v>-lpp<v>/cni/bin  CNI bridge, host-local, loopback, portmap
#   images-<hash>/{pause,backup,workspace}.tar + images.env   images/build-local.sh, keyed by a hash of
#                                                     images/ and the versions; linked as <node dir>/images
# The kubelet comes from build.sh (the control plane's cache).
# Prints the node cache dir as the LAST line of stdout; progress and timings go to stderr.
# Env: HYPERBOLA_LOCALKUBE_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/hyperbola/localkube),
#      CONTAINERD_VERSION (2.4.2), RUNC_VERSION (1.5.3), CNI_VERSION (1.10.0), LPP_VERSION (0.0.30).
# Needs: go, gcc + libseccomp-dev (runc), and what images/build-local.sh lists.
# Cold build on 2 cores: ~10-20 min (containerd and local-path-provisioner are the big ones).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CONTAINERD_V=${CONTAINERD_VERSION:-2.4.2}
RUNC_V=${RUNC_VERSION:-1.5.3}
CNI_V=${CNI_VERSION:-1.10.0}
LPP_V=${LPP_VERSION:-0.0.30}
BASE=${HYPERBOLA_LOCALKUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hyperbola/localkube}
ROOT=$BASE/node-containerd$CONTAINERD_V-runc$RUNC_V-cni$CNI_V-lpp$LPP_V
BIN=$ROOT/bin
CNIBIN=$ROOT/cni/bin
SRC=$ROOT/src
export GOCACHE=${LOCALKUBE_NODE_GOCACHE:-$BASE/gocache-node} GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
mkdir -p "$BIN" "$CNIBIN" "$SRC"
log() { echo "[localkube build-node] $*" >&2; }
# one build at a time (two test packages may ask at once): the second waits, then finds it built
exec 8> "$BASE/.build-node.lock"
flock -n 8 || { log "another build-node.sh is running: waiting for it"; flock 8; }
T() { # label cmd... : timed (wall time, and peak RSS when GNU time is there, to stderr), niced
  local l=$1 s=$SECONDS; shift
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f "[localkube build-node] $l: %e s wall, %M KB max RSS" nice -n 10 "$@"
  else
    nice -n 10 "$@" && log "$l: $((SECONDS - s)) s wall"
  fi
}
mod() { # dir module version tool-pkgs... : a throwaway module that requires the release, so the
        # build uses its own go.mod's versions (a plain `go install m@v` cannot set tags and ldflags)
  local d=$SRC/$1 m=$2 v=$3; shift 3
  mkdir -p "$d"
  if [ ! -f "$d/go.mod" ]; then
    { printf 'module hyperbola/localkube/%s\n\ngo 1.26.0\n\nrequire %s v%s\n\ntool (\n' "$1" "$m" "$v"
      for p in "$@"; do printf '\t%s\n' "$p"; done; printf ')\n'; } > "$d/go.mod.tmp"
    mv "$d/go.mod.tmp" "$d/go.mod"
    (cd "$d" && nice -n 10 go mod tidy) || { rm -f "$d/go.mod"; return 1; }
  fi
}
s0=$SECONDS

# ---- containerd v2 (pure Go; the btrfs/devmapper/zfs snapshotters are left out) ----
if [ ! -x "$BIN/containerd" ] || [ ! -x "$BIN/ctr" ] || [ ! -x "$BIN/containerd-shim-runc-v2" ]; then
  C=github.com/containerd/containerd/v2
  log "building containerd v$CONTAINERD_V (cold: ~5-10 min)"
  mod containerd $C "$CONTAINERD_V" $C/cmd/containerd $C/cmd/ctr $C/cmd/containerd-shim-runc-v2
  (cd "$SRC/containerd" && CGO_ENABLED=0 T "containerd $CONTAINERD_V" go build -trimpath \
     -tags "no_btrfs no_devmapper no_zfs" \
     -ldflags "-s -w -X $C/version.Version=v$CONTAINERD_V -X $C/version.Revision=module-proxy-build" \
     -o "$BIN/" $C/cmd/containerd $C/cmd/ctr $C/cmd/containerd-shim-runc-v2)
fi

# ---- runc (cgo: libcontainer/nsenter is C; the seccomp tag needs libseccomp-dev) ----
if [ ! -x "$BIN/runc" ]; then
  [ -f /usr/include/seccomp.h ] || { echo "build-node.sh: libseccomp-dev is missing (apt-get install libseccomp-dev)" >&2; exit 1; }
  log "building runc $RUNC_V"
  mod runc github.com/opencontainers/runc "$RUNC_V" github.com/opencontainers/runc
  (cd "$SRC/runc" && CGO_ENABLED=1 T "runc $RUNC_V" go build -trimpath -tags "seccomp urfave_cli_no_docs" \
     -ldflags "-s -w -X main.version=$RUNC_V -X main.gitCommit=module-proxy-build" \
     -o "$BIN/runc" github.com/opencontainers/runc)
fi

# ---- CNI plugins ----
if [ ! -x "$CNIBIN/bridge" ] || [ ! -x "$CNIBIN/host-local" ] || [ ! -x "$CNIBIN/loopback" ] || [ ! -x "$CNIBIN/portmap" ]; then
  P=github.com/containernetworking/plugins/plugins
  log "building CNI plugins v$CNI_V"
  mod cni github.com/containernetworking/plugins "$CNI_V" $P/main/bridge $P/ipam/host-local $P/main/loopback $P/meta/portmap
  (cd "$SRC/cni" && CGO_ENABLED=0 T "cni-plugins $CNI_V" go build -trimpath -ldflags "-s -w" \
     -o "$CNIBIN/" $P/main/bridge $P/ipam/host-local $P/main/loopback $P/meta/portmap)
fi

# ---- local-path-provisioner (dynamic local volumes on the real node) ----
if [ ! -x "$BIN/local-path-provisioner" ]; then
  log "building local-path-provisioner v$LPP_V (cold: ~5 min)"
  mod lpp github.com/rancher/local-path-provisioner "$LPP_V" github.com/rancher/local-path-provisioner
  (cd "$SRC/lpp" && CGO_ENABLED=0 T "local-path-provisioner $LPP_V" go build -trimpath -ldflags "-s -w" \
     -o "$BIN/local-path-provisioner" github.com/rancher/local-path-provisioner)
fi

# ---- images (pause, backup, workspace), keyed by what they are built from ----
KEY=$("$REPO/images/build-local.sh" --key)
IMG=$BASE/images-$KEY
if [ ! -s "$IMG/images.env" ]; then
  log "building the images into $IMG"
  s=$SECONDS
  "$REPO/images/build-local.sh" "$IMG"
  log "images: $((SECONDS - s)) s wall"
fi
ln -sfn "$IMG" "$ROOT/images.tmp" && mv -T "$ROOT/images.tmp" "$ROOT/images"
log "node cache ready in $((SECONDS - s0)) s: $ROOT"
echo "$ROOT"
