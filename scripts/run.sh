#!/usr/bin/env bash
# run.sh - `make run`: the control plane locally. Starts the local Kubernetes control plane
# (scripts/localkube), a redis-server, the Firestore emulator (when the gcloud SDK ships it) and
# the API on 127.0.0.1 (default port 8080), prints an
# API key and curl commands that work, and stops everything on Ctrl-C.
# Env: HYPERBOLA_LISTEN (127.0.0.1:8080), HYPERBOLA_NAMESPACE (hyperbola), API_KEY (generated).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
RUN=${HYPERBOLA_RUN_DIR:-$ROOT/.run}
mkdir -p "$RUN"
LISTEN=${HYPERBOLA_LISTEN:-127.0.0.1:8080}
NS=${HYPERBOLA_NAMESPACE:-hyperbola}
pids=()
KDIR=""
cleanup() {
  trap - EXIT INT TERM
  echo; echo "stopping..."
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "$KDIR" ] && "$ROOT/scripts/localkube/down.sh" "$KDIR" >/dev/null 2>&1 || true
  # the emulator's launcher re-executes java: stop it by its port
  [ -n "${FPORT:-}" ] && pkill -f "cloud-firestore-emulator.jar.*--port=$FPORT" 2>/dev/null
  sleep 1
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

command -v redis-server >/dev/null || { echo "redis-server is missing: apt-get install -y redis-server" >&2; exit 1; }
if curl -s -o /dev/null "http://$LISTEN/health" 2>/dev/null; then
  echo "something already answers on $LISTEN: stop it or set HYPERBOLA_LISTEN" >&2; exit 1
fi

CACHE=$("$ROOT/scripts/localkube/build.sh" | tail -n 1)
KDIR=$(mktemp -d "${TMPDIR:-/tmp}/hyperbola-run-kube.XXXXXX")
echo "starting the local Kubernetes control plane..."
KC=$(LOCALKUBE_ROOT=$CACHE K8SENV_LINK=1 "$ROOT/scripts/localkube/up.sh" "$KDIR" 2>"$RUN/localkube.log" | tail -n 1)
KUBECTL="$CACHE/bin/kubectl --kubeconfig=$KC"
$KUBECTL create namespace "$NS" >/dev/null
$KUBECTL -n "$NS" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: hyperbola-backups
spec:
  accessModes: [ReadWriteOnce]
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
echo "building the API server..."
go build -o "$RUN/hyperbola-server" "$ROOT/functions/cmd/server"
env "${FS_ENV[@]}" HYPERBOLA_WAKE_SECRET="${HYPERBOLA_WAKE_SECRET:-$(openssl rand -hex 32)}" KUBECONFIG=$KC REDIS_HOST=127.0.0.1 REDIS_PORT=$RPORT API_KEY=$KEY HYPERBOLA_NAMESPACE=$NS \
  HYPERBOLA_LISTEN=$LISTEN HYPERBOLA_DOMAIN=${HYPERBOLA_DOMAIN:-localtest.me} \
  "$RUN/hyperbola-server" >"$RUN/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do curl -sf "http://$LISTEN/health" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf "http://$LISTEN/health" >/dev/null || { echo "the API did not start; see $RUN/server.log" >&2; tail -20 "$RUN/server.log" >&2; exit 1; }

cat > "$RUN/env" <<EOF
export HYPERBOLA_ENDPOINT=http://$LISTEN
export HYPERBOLA_API_KEY=$KEY
export API_KEY=$KEY
export KUBECONFIG=$KC
EOF
cat <<EOF

Hyperbola is running (logs in $RUN/):
  API          http://$LISTEN
  API key      $KEY
  kubeconfig   $KC   (kubectl: $CACHE/bin/kubectl)
  redis        127.0.0.1:$RPORT
  firestore    ${FS_ENV[1]:-off}

In another shell:
  source $RUN/env
  curl -s http://$LISTEN/health
  curl -s -X POST http://$LISTEN/session/create -H "X-API-Key: \$API_KEY" -H 'Content-Type: application/json' -d '{"user_id": "user@example.com"}'

Ctrl-C stops everything.
EOF
wait "${pids[-1]}"
