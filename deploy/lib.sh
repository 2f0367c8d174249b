# Shared settings for the deploy/ scripts. Source it; it sets paths and reads versions.env.
# shellcheck shell=bash
DEPLOY_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$DEPLOY_DIR/.." && pwd)
# shellcheck source=versions.env
. "$DEPLOY_DIR/versions.env"

AKASH_CACHE=${AKASH_CACHE:-$HOME/.cache/akash-provider}
K8S_BIN_CACHE=$AKASH_CACHE/k8s-bin
# Where a running local environment keeps its state, logs, PIDs and kubeconfig.
AKASH_STATE_DIR=${AKASH_STATE_DIR:-$REPO_DIR/.local}
export PATH="/usr/local/go/bin:$PATH"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Path of a cached binary, by name and version.
cached_bin() { printf '%s/%s-%s\n' "$K8S_BIN_CACHE" "$1" "$2"; }

# The etcd version: pinned in versions.env, else the etcd client k8s.io/kubernetes requires.
etcd_version() {
  if [ -n "${ETCD_VERSION:-}" ]; then echo "$ETCD_VERSION"; return; fi
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [ -f "$gomod" ] || die "could not download the go.mod of k8s.io/kubernetes@$KUBERNETES_VERSION"
  awk '$1=="go.etcd.io/etcd/client/v3" {print $2; exit}' "$gomod"
}

# Directory holding one symlink per tool (kubectl, helm, ...) at the versions in versions.env.
tool_dir() { echo "$AKASH_CACHE/bin"; }

# shellcheck source=cluster.env
. "$DEPLOY_DIR/cluster.env"

# The PID of a running process from its PID file DIR/NAME; fails if it is not running. The command
# line must name MATCH (default NAME), so that a PID reused by another process is never signalled.
pid_from() {
  local f=$1/$2 match=${3:-$2} pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$match" || return 1
  echo "$pid"
}

# The PID of a running control-plane component.
component_pid() { pid_from "$CLUSTER_DIR/pids" "$1"; }

# The PID of a running part of the real node (registry, containerd, kubelet, kube-proxy, kube-router).
node_component_pid() {
  local match=$1
  [ "$1" = registry ] && match=docker-registry
  pid_from "$NODE_DIR/pids" "$1" "$match"
}

# stop_pid NAME PID [QUIET]: TERM, then KILL after 10 s.
stop_pid() {
  local name=$1 pid=$2
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    [ -n "${3:-}" ] || log "killed $name (pid $pid)"
  else
    [ -n "${3:-}" ] || log "stopped $name (pid $pid)"
  fi
}

# Whether this run has a real node: asked for (AKASH_REAL_NODE, default 1) and root.
real_node_enabled() { [ "${AKASH_REAL_NODE:-1}" != 0 ] && [ "$(id -u)" = 0 ]; }

# The real node's host processes, in start order.
NODE_COMPONENTS=(registry containerd kubelet kube-proxy kube-router)

# True when every control-plane process (and the real node's, when it is enabled) is alive and the
# API server answers /readyz.
cluster_running() {
  local c pki=$CLUSTER_DIR/pki
  for c in etcd kube-apiserver kube-controller-manager kube-scheduler kwok; do
    component_pid "$c" >/dev/null || return 1
  done
  if real_node_enabled; then
    for c in "${NODE_COMPONENTS[@]}"; do node_component_pid "$c" >/dev/null || return 1; done
  fi
  curl -sf --max-time 2 --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
    "https://127.0.0.1:$APISERVER_PORT/readyz" >/dev/null 2>&1
}
