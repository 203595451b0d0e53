#!/usr/bin/env bash
# run.sh - `make run`: the control plane locally. Starts the local Kubernetes control plane
# (scripts/localkube) with its real node (containerd and a kubelet on this machine, so
# workspaces run the real code-server, on real volumes), a redis-server, the Firestore emulator
# (when the gcloud SDK ships it), the API on 127.0.0.1 (default port 8080) and beside it the local
# entry point to workspaces (internal/devingress, default 127.0.0.1:8081), where
# http://vs-code-<id>.localhost:8081/ opens a workspace's IDE in a browser on this machine.
# Prints an API key and commands that work, and stops everything on Ctrl-C.
# Env: HYPERBOLA_LISTEN (127.0.0.1:8080), HYPERBOLA_LOCAL_INGRESS (127.0.0.1:8081),
#      HYPERBOLA_NAMESPACE (hyperbola), HYPERBOLA_DOMAIN (localhost), API_KEY (generated),
#      K8SENV_REALNODE (1; 0 = kwok's fake nodes only: the API works but no IDE runs, no root needed),
#      HYPERBOLA_ROUTING (ingress; gateway = each workspace gets an HTTPRoute on the Gateway
#      HYPERBOLA_GATEWAY_NAME (hyperbola) of class HYPERBOLA_GATEWAY_CLASS (hyperbola-local here),
#      and the local entry point follows those instead of Ingresses),
#      HYPERBOLA_LOCAL_POD_LINK (127.0.0.1:8099: the API's address inside each workspace pod, the
#      IDE extension's HYPERBOLA_ACTIVITY_URL; real node only), HYPERBOLA_ACTIVITY_KEY (generated
#      once, kept in the run dir's activity.key).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
RUN=${HYPERBOLA_RUN_DIR:-$ROOT/.run}
mkdir -p "$RUN"
LISTEN=${HYPERBOLA_LISTEN:-127.0.0.1:8080}
INGRESS=${HYPERBOLA_LOCAL_INGRESS:-127.0.0.1:8081}
NS=${HYPERBOLA_NAMESPACE:-hyperbola}
# *.localhost is loopback for Chromium, Firefox and curl without any DNS
DOMAIN=${HYPERBOLA_DOMAIN:-localhost}
REALNODE=${K8SENV_REALNODE:-1}
ROUTING=$(printf %s "${HYPERBOLA_ROUTING:-ingress}" | tr "[:upper:]" "[:lower:]")
case "$ROUTING" in
  ingress | gateway) ;;
  *) echo "HYPERBOLA_ROUTING=$ROUTING: want ingress or gateway" >&2; exit 1 ;;
esac
# the local cluster's GatewayClass: no GKE policies (their CRDs are not installed here), and the
# local entry point stands in for its controller
GATEWAY_CLASS=${HYPERBOLA_GATEWAY_CLASS:-hyperbola-local}
pids=()
KDIR=""
cleanup() {
  trap - EXIT INT TERM
  echo; echo "stopping..."
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  # the local cluster, its real node's containers included
  [ -n "$KDIR" ] && "$ROOT/scripts/localkube/down.sh" "$KDIR" >/dev/null 2>&1 || true
  # the emulator's launcher re-executes java: stop it by its port
  [ -n "${FPORT:-}" ] && pkill -f "cloud-firestore-emulator.jar.*--port=$FPORT" 2>/dev/null
  sleep 1
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

command -v redis-server >/dev/null || { echo "redis-server is missing: apt-get install -y redis-server" >&2; exit 1; }
for addr in "$LISTEN" "$INGRESS"; do
  if curl -s -o /dev/null "http://$addr/" 2>/dev/null; then
    echo "something already answers on $addr: stop it or set HYPERBOLA_LISTEN / HYPERBOLA_LOCAL_INGRESS" >&2; exit 1
  fi
done
if [ "$REALNODE" = 1 ] && [ "$(id -u)" != 0 ]; then
  echo "the local cluster's real node needs root (containers, cgroups, a bridge): run as root, or with K8SENV_REALNODE=0 (no IDE)" >&2; exit 1
fi

CACHE=$("$ROOT/scripts/localkube/build.sh" | tail -n 1)
KENV=(LOCALKUBE_ROOT="$CACHE" K8SENV_LINK=1)
if [ "$REALNODE" = 1 ]; then
  KENV+=(K8SENV_REALNODE=1 REALNODE_ROOT="$("$ROOT/scripts/localkube/build-node.sh" | tail -n 1)")
fi
KDIR=$(mktemp -d "${TMPDIR:-/tmp}/hyperbola-run-kube.XXXXXX")
echo "starting the local Kubernetes control plane$([ "$REALNODE" = 1 ] && echo " and its real node")..."
KC=$(env "${KENV[@]}" "$ROOT/scripts/localkube/up.sh" "$KDIR" 2>"$RUN/localkube.log" | tail -n 1) ||
  { echo "the local cluster did not start; see $RUN/localkube.log" >&2; tail -n 20 "$RUN/localkube.log" >&2; exit 1; }
KUBECTL="$CACHE/bin/kubectl --kubeconfig=$KC"
$KUBECTL create namespace "$NS" >/dev/null
# The namespace's ResourceQuota and LimitRange, as infra/modules/cluster-addons sets them
# (internal/kube's integration test runs a workspace and a backup under this very file).
$KUBECTL -n "$NS" apply -f "$ROOT/scripts/local-quota.yaml" >/dev/null
# and its default-deny NetworkPolicy, as infra sets it (each workspace's own policy opens what
# it may reach; the real node's bridge CNI does not enforce either)
$KUBECTL -n "$NS" apply -f "$ROOT/scripts/local-network-policy.yaml" >/dev/null
# and the warm path's placeholders' PriorityClass (cluster-scoped), as infra creates it: the
# placeholders (HYPERBOLA_WARM_PLACEHOLDERS, 0 by default) name it
$KUBECTL apply -f "$ROOT/scripts/local-priority-class.yaml" >/dev/null
ROUTING_ENV=(HYPERBOLA_ROUTING="$ROUTING")
if [ "$ROUTING" = gateway ]; then
  # the class the control plane's Gateway names (cluster-scoped; its controller is the local
  # entry point, which writes no status)
  $KUBECTL apply -f - >/dev/null <<EOF
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: $GATEWAY_CLASS
spec:
  controllerName: hyperbola.dev/devingress
EOF
  ROUTING_ENV+=(HYPERBOLA_GATEWAY_CLASS="$GATEWAY_CLASS")
  echo "routing: gateway (an HTTPRoute per workspace on the Gateway ${HYPERBOLA_GATEWAY_NAME:-hyperbola}, class $GATEWAY_CLASS)"
else
  echo "routing: ingress (an Ingress per workspace)"
fi

# Workspaces and backups run on the real node: its code-server and backup images, volumes of
# its local-path class, and the placement that lets their pods onto it (it is tainted for
# every other pod). Without it they go to kwok's fake nodes, which run nothing.
NODE_ENV=()
CLASS_LINE=""
if [ "$REALNODE" = 1 ]; then
  fact() { sed -n "s/^$1=//p" "$KDIR/env"; }
  PROBE_URL='http://{pod_ip}:{port}/healthz'
  CLASS=$(fact REALNODE_STORAGE_CLASS)
  CLASS_LINE="storageClassName: $CLASS"
  NODE_ENV=(USER_POD_IMAGE="$(fact REALNODE_WORKSPACE_IMAGE)" HYPERBOLA_BACKUP_IMAGE="$(fact REALNODE_BACKUP_IMAGE)"
    HYPERBOLA_STORAGE_CLASS="$CLASS"
    HYPERBOLA_NODE_SELECTOR=hyperbola.dev/node=real HYPERBOLA_TOLERATIONS=hyperbola.dev/node=real:NoSchedule
    # this host reaches the real node's pods by address (cni0), not by cluster DNS: the sweep
    # reads code-server's heartbeat there, as it does on GKE over Direct VPC egress
    # (the default in a variable: inside ${VAR:-...} the first } would end the expansion)
    "HYPERBOLA_SWEEP_PROBE_URL=${HYPERBOLA_SWEEP_PROBE_URL:-$PROBE_URL}")
fi
$KUBECTL -n "$NS" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: hyperbola-backups
spec:
  accessModes: [ReadWriteOnce]
  $CLASS_LINE
  resources: {requests: {storage: 20Gi}}
EOF

# redis-server on a free port below the ephemeral range
for _ in $(seq 50); do
  RPORT=$(shuf -i 10000-32000 -n 1)
  ss -Htln "sport = :$RPORT" | grep -q . || break
done
redis-server --bind 127.0.0.1 --port "$RPORT" --save '' --appendonly no --dir "$RUN" >"$RUN/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.05; done

# the Firestore emulator (durable records, events, GET /usage), when the gcloud SDK ships it
FS_ENV=()
JAR=${FIRESTORE_EMULATOR_JAR:-/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar}
if [ -f "$JAR" ] && command -v java >/dev/null; then
  for _ in $(seq 50); do
    FPORT=$(shuf -i 10000-32000 -n 1)
    [ "$FPORT" != "$RPORT" ] && ! ss -Htln "sport = :$FPORT" | grep -q . && break
  done
  java -Xmx512m -cp "$JAR" com.google.cloud.datastore.emulator.firestore.CloudFirestore start \
    --host=127.0.0.1 --port="$FPORT" --database-mode=firestore-native >"$RUN/firestore.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$FPORT/" >/dev/null 2>&1 && break; sleep 0.1; done
  FS_ENV=(GOOGLE_CLOUD_PROJECT=hyperbola-local FIRESTORE_EMULATOR_HOST=127.0.0.1:$FPORT)
else
  echo "no Firestore emulator ($JAR): durable records and /usage are off"
fi

KEY=${API_KEY:-$(openssl rand -hex 24)}
# The activity key signs each workspace's activity credential (in its Secret, made once): kept
# in the run dir so workspaces made before a restart still report. With the real node, the
# IDE extension in each workspace reports to http://127.0.0.1:8099, an address on the pod's own
# loopback that the server relays to the API here (internal/podlink): the API listens on this
# host's loopback only and pods may not send traffic out of their range.
[ -s "$RUN/activity.key" ] || (umask 077 && openssl rand -hex 32 >"$RUN/activity.key")
ACTIVITY_ENV=(HYPERBOLA_ACTIVITY_KEY="${HYPERBOLA_ACTIVITY_KEY:-$(cat "$RUN/activity.key")}")
if [ "$REALNODE" = 1 ]; then
  POD_LINK=${HYPERBOLA_LOCAL_POD_LINK:-127.0.0.1:8099}
  ACTIVITY_ENV+=(HYPERBOLA_LOCAL_POD_LINK="$POD_LINK" HYPERBOLA_LOCAL_POD_LINK_NETNS="$(fact REALNODE_NETNS_DIR)"
    HYPERBOLA_ACTIVITY_URL="http://$POD_LINK")
fi
echo "building the API server..."
go build -o "$RUN/hyperbola-server" "$ROOT/functions/cmd/server"
# Wake on access is on (a wake secret): a sleeping workspace's address reaches the activator
# through the local entry point, which asks for the workspace's password and wakes it.
env "${FS_ENV[@]}" "${NODE_ENV[@]}" "${ROUTING_ENV[@]}" "${ACTIVITY_ENV[@]}" HYPERBOLA_WAKE_SECRET="${HYPERBOLA_WAKE_SECRET:-$(openssl rand -hex 32)}" \
  KUBECONFIG="$KC" REDIS_HOST=127.0.0.1 REDIS_PORT="$RPORT" API_KEY="$KEY" HYPERBOLA_NAMESPACE="$NS" \
  HYPERBOLA_LISTEN="$LISTEN" HYPERBOLA_LOCAL_INGRESS="$INGRESS" HYPERBOLA_DOMAIN="$DOMAIN" \
  "$RUN/hyperbola-server" >"$RUN/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do curl -sf "http://$LISTEN/ready" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf "http://$LISTEN/ready" >/dev/null || { echo "the API did not start; see $RUN/server.log" >&2; tail -20 "$RUN/server.log" >&2; exit 1; }

cat > "$RUN/env" <<EOF
export HYPERBOLA_ENDPOINT=http://$LISTEN
export HYPERBOLA_API_KEY=$KEY
export API_KEY=$KEY
export KUBECONFIG=$KC
EOF
IDE="http://vs-code-\$ID.$DOMAIN:${INGRESS##*:}/"
if [ "$REALNODE" = 1 ]; then
  WHERE="the real code-server, on the local cluster's real node"
  ACTIVITY="http://$POD_LINK inside each workspace, relayed to the API (HYPERBOLA_LOCAL_POD_LINK)"
else
  WHERE="fake nodes: no IDE runs (K8SENV_REALNODE=0)"
  ACTIVITY="off: no workspace runs to report"
fi
cat <<EOF

Hyperbola is running (logs in $RUN/):
  API          http://$LISTEN
  API key      $KEY
  workspaces   http://vs-code-<id>.$DOMAIN:${INGRESS##*:}/   ($WHERE)
  activity     $ACTIVITY
  routing      $ROUTING   (HYPERBOLA_ROUTING; the entry point follows each workspace's $([ "$ROUTING" = gateway ] && echo HTTPRoute || echo Ingress))
  kubeconfig   $KC   (kubectl: $CACHE/bin/kubectl)
  redis        127.0.0.1:$RPORT
  firestore    ${FS_ENV[1]:-off}

In another shell:
  source $RUN/env
  curl -s \$HYPERBOLA_ENDPOINT/ready
  curl -s -X POST \$HYPERBOLA_ENDPOINT/session/create -H "X-API-Key: \$API_KEY" -H 'Content-Type: application/json' \\
    -d '{"user_id": "ada@example.com"}' | tee /tmp/created.json
  ID=\$(sed -n 's/.*"uuid":"\([a-z0-9]*\)".*/\1/p' /tmp/created.json)
  PASSWORD=\$(sed -n 's/.*"password":"\([^"]*\)".*/\1/p' /tmp/created.json)
  echo "open $IDE in a browser on this machine; password \$PASSWORD"

The IDE asks for that password. Asleep, the same address wakes the workspace (a browser that
never logged in is asked for the password first) and opens the IDE when it is ready.
Ctrl-C stops everything.
EOF
wait "${pids[-1]}"
