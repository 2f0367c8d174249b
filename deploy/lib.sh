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

# The PID of a running control-plane component, from its PID file; fails if it is not running.
# The command line is checked too, so that a PID reused by another process is never signalled.
component_pid() {
  local f=$CLUSTER_DIR/pids/$1 pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$1" || return 1
  echo "$pid"
}

# True when every control-plane process is alive and the API server answers /readyz.
cluster_running() {
  local c pki=$CLUSTER_DIR/pki
  for c in etcd kube-apiserver kube-controller-manager kube-scheduler kwok; do
    component_pid "$c" >/dev/null || return 1
  done
  curl -sf --max-time 2 --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
    "https://127.0.0.1:$APISERVER_PORT/readyz" >/dev/null 2>&1
}
