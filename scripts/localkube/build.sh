#!/usr/bin/env bash
# build.sh - build the local control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, kwok) and the real node's kubelet from the Go module proxy into a cache OUTSIDE the repo,
# keyed by version, and generate kwok's stages. Rebuilds only what is missing.
#
# Prints the cache directory (holding bin/ and kwok-stages.yaml) as the LAST line of stdout.
# Env: HYPERBOLA_LOCALKUBE_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/hyperbola/localkube),
#      K8S_VERSION (1.36.3), KWOK_VERSION (0.8.0).
# Cold build: ~5-15 min and ~2 GB RAM for Kubernetes, ~1.5 min for kwok, on 2 cores.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
K8S_V=${K8S_VERSION:-1.36.3}
KWOK_V=${KWOK_VERSION:-0.8.0}
BASE=${HYPERBOLA_LOCALKUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hyperbola/localkube}
# the stages depend on our own stage file too: key them by its content
STAGE_KEY=$(cat "$HERE/make-stages.sh" "$HERE/hyperbola-stages.yaml" | sha256sum | cut -c1-12)
ROOT=$BASE/v$K8S_V-kwok$KWOK_V
BIN=$ROOT/bin
SRC=$ROOT/src
export GOCACHE=${LOCALKUBE_GOCACHE:-$BASE/gocache}
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
mkdir -p "$BIN" "$SRC"
log() { echo "[localkube build] $*" >&2; }

k8s_bins="kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet etcd"
targets=()
for b in $k8s_bins; do
  [ -x "$BIN/$b" ] && continue
  case $b in etcd) targets+=(go.etcd.io/etcd/server/v3) ;; *) targets+=("k8s.io/kubernetes/cmd/$b") ;; esac
done
if [ ${#targets[@]} -gt 0 ]; then
  s=$(date +%s)
  log "building Kubernetes v$K8S_V (cold: ~5 min, ~2 GB RAM) into $BIN"
  mkdir -p "$SRC/k8s" && cd "$SRC/k8s"
  if [ ! -f go.mod ]; then
    MODFILE=$(go mod download -json "k8s.io/kubernetes@v$K8S_V" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    # etcd version this release itself uses: pin etcdctl to it, else tidy drifts etcd/grpc
    ETCDV=$(awk '$1=="go.etcd.io/etcd/server/v3"{print $2}' "$MODFILE")
    {
      printf 'module hyperbola/localkube/k8s\n\ngo 1.26.0\n\nrequire (\n\tk8s.io/kubernetes v%s\n\tgo.etcd.io/etcd/etcdctl/v3 %s\n)\n\nreplace (\n' "$K8S_V" "$ETCDV"
      # every staging module k8s.io/kubernetes replaces with ./staging/... -> the published v0.X.Y
      grep -E '^\s+k8s.io/[a-z0-9-]+ => ./staging' "$MODFILE" | awk -v sv="v0.${K8S_V#1.}" '{print "\t"$1" => "$1" "sv}'
      printf ')\n\ntool (\n'
      printf '\tk8s.io/kubernetes/cmd/kube-apiserver\n\tk8s.io/kubernetes/cmd/kube-controller-manager\n'
      printf '\tk8s.io/kubernetes/cmd/kube-scheduler\n\tk8s.io/kubernetes/cmd/kubectl\n\tk8s.io/kubernetes/cmd/kubelet\n'
      printf '\tgo.etcd.io/etcd/server/v3\n\tgo.etcd.io/etcd/etcdctl/v3\n)\n'
    } > go.mod.tmp
    mv go.mod.tmp go.mod
    go mod tidy
  fi
  MINOR=$(echo "$K8S_V" | cut -d. -f2)
  LDF="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    LDF="$LDF -X $pkg.gitVersion=v$K8S_V -X $pkg.gitMajor=1 -X $pkg.gitMinor=$MINOR -X $pkg.gitTreeState=clean -X $pkg.gitCommit=module-proxy-build -X $pkg.buildDate=2026-01-01T00:00:00Z"
  done
  # one go build for all of them: shared packages compile once
  log "building ${targets[*]}"
  nice -n 10 go build -trimpath -ldflags "$LDF" -o "$BIN/" "${targets[@]}"
  if [ -x "$BIN/server" ]; then mv -f "$BIN/server" "$BIN/etcd"; fi # go.etcd.io/etcd/server/v3 builds as "server"
  log "built Kubernetes in $(($(date +%s) - s))s"
fi

if [ ! -x "$BIN/kwok" ]; then
  s=$(date +%s)
  log "building kwok v$KWOK_V (cold: ~1.5 min)"
  mkdir -p "$SRC/kwok" && cd "$SRC/kwok"
  if [ ! -f go.mod ]; then
    printf 'module hyperbola/localkube/kwok\n\ngo 1.26.0\n\nrequire sigs.k8s.io/kwok v%s\n\ntool sigs.k8s.io/kwok/cmd/kwok\n' "$KWOK_V" > go.mod.tmp
    mv go.mod.tmp go.mod
    go mod tidy
  fi
  go build -trimpath -ldflags "-s -w" -o "$BIN/kwok" sigs.k8s.io/kwok/cmd/kwok
  log "built kwok in $(($(date +%s) - s))s"
fi

STAGES=$ROOT/kwok-stages-$STAGE_KEY.yaml
if [ ! -s "$STAGES" ]; then
  "$HERE/make-stages.sh" "$KWOK_V" > "$STAGES.tmp"
  mv "$STAGES.tmp" "$STAGES"
fi
ln -sfn "$(basename "$STAGES")" "$ROOT/kwok-stages.yaml"
echo "$ROOT"
