# shellcheck shell=bash
# Shared helpers for tests/cluster/{up,down,env}. Sourced, not executed.
CLUSTER_SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$CLUSTER_SCRIPTS/../.." && pwd)
DIR=${FIAAS_TEST_CLUSTER_DIR:-$REPO_ROOT/target/test-cluster}
CACHE=${FIAAS_K8S_CACHE:-$HOME/.cache/fiaas-k8s-test}
# shellcheck disable=SC2034  # used by up
KUBE_BIN=$CACHE/bin
PKI=$DIR/pki
TOKEN=test-admin-token
COMPONENTS=(kcm apiserver etcd)   # stop order

log() { printf '[cluster/%s] %s\n' "${SCRIPT_NAME:-?}" "$*" >&2; }

# Binary name expected in /proc/PID/cmdline for each component (guards against recycled pids).
component_bin() {
  case "$1" in
    kcm) echo kube-controller-manager ;;
    apiserver) echo kube-apiserver ;;
    etcd) echo etcd ;;
  esac
}

# component_pid NAME: print the pid if NAME is running (per its pid file), else return 1.
component_pid() {
  local f=$DIR/$1.pid pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "$(component_bin "$1")" || return 1
  echo "$pid"
}

api_port() {
  [ -f "$DIR/ports" ] || return 1
  sed -n 's/^API_PORT=//p' "$DIR/ports"
}

# apiserver_ready: /readyz answers ok on the recorded port.
apiserver_ready() {
  local port
  port=$(api_port) || return 1
  [ -n "$port" ] || return 1
  curl -sf --max-time 2 --cacert "$PKI/ca.crt" -H "Authorization: Bearer $TOKEN" \
    "https://127.0.0.1:$port/readyz" >/dev/null 2>&1
}

# cluster_healthy: all three processes alive, apiserver ready, env file written.
cluster_healthy() {
  local c
  for c in "${COMPONENTS[@]}"; do component_pid "$c" >/dev/null || return 1; done
  [ -f "$DIR/env" ] && [ -f "$DIR/kubeconfig" ] && apiserver_ready
}

# stop_all: stop everything started by `up` in this state dir; remove the etcd data dir.
stop_all() {
  local c pid f
  for c in "${COMPONENTS[@]}"; do
    f=$DIR/$c.pid
    [ -f "$f" ] || continue
    if pid=$(component_pid "$c"); then
      log "stopping $c (pid $pid)"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      if kill -0 "$pid" 2>/dev/null; then
        log "$c did not exit in 10 s; SIGKILL"
        kill -9 "$pid" 2>/dev/null || true
      fi
    fi
    rm -f "$f"
  done
  if [ -f "$DIR/etcd.datadir" ]; then
    local d
    d=$(cat "$DIR/etcd.datadir")
    case "$d" in /dev/shm/fiaas-etcd.*) rm -rf "$d" ;; esac
    rm -f "$DIR/etcd.datadir"
  fi
  rm -f "$DIR/env"
}

# start_apiserver API_PORT ETCD_PORT: start kube-apiserver in the background with the cluster's
# flags (shared by `up` and `restart-apiserver`, so a restarted server is the same server).
# Requests of ServiceAccounts are written to $DIR/audit.log (JSON lines, metadata only): tests
# that run the daemon under deploy/rbac.yaml read from it which verbs the daemon used. The
# admin user of the tests and the controller-manager are not logged, to keep the log small.
start_apiserver() {
  local api_port=$1 etcd_port=$2
  cat > "$DIR/audit-policy.yaml" <<'POLICY'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
  - level: None
POLICY
  log "starting kube-apiserver on https://127.0.0.1:$api_port"
  "$KUBE_BIN/kube-apiserver" --etcd-servers="http://127.0.0.1:$etcd_port" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$api_port" --insecure-port=0 \
    --cert-dir="$DIR/certs" --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" --token-auth-file="$PKI/tokens.csv" --authorization-mode=RBAC \
    --service-cluster-ip-range=10.0.0.0/16 --service-account-issuer=https://kubernetes.default.svc \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --disable-admission-plugins=ServiceAccount --allow-privileged=true \
    --audit-policy-file="$DIR/audit-policy.yaml" --audit-log-path="$DIR/audit.log" --audit-log-format=json \
    </dev/null >>"$DIR/apiserver.log" 2>&1 9>&- &
  echo $! > "$DIR/apiserver.pid"
}
