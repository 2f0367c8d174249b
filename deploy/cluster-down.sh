#!/usr/bin/env bash
# Stops the local control plane started by deploy/cluster-up.sh, and its real node (deploy/node-down.sh),
# by PID: TERM, then KILL after 10s.
# --purge also deletes its state (etcd data, certificates, logs, kubeconfig).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
quiet=false purge=false
for a in "$@"; do
  case $a in
    --quiet) quiet=true ;;
    --purge) purge=true ;;
    *) die "unknown argument '$a' (known: --quiet --purge)" ;;
  esac
done
say() { $quiet || log "$@"; }

# The real node first (it only stops what it finds running).
node_args=()
$quiet && node_args+=(--quiet)
$purge && node_args+=(--purge)
"$DEPLOY_DIR/node-down.sh" "${node_args[@]}" || log "stopping the real node failed; stopping the control plane anyway"

pids=$CLUSTER_DIR/pids
# Reverse start order: the nodes' simulator first, etcd last.
for c in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
  if pid=$(component_pid "$c"); then
    if $quiet; then stop_pid "$c" "$pid" quiet; else stop_pid "$c" "$pid"; fi
  fi
  rm -f "$pids/$c"
done
if $purge; then
  rm -rf "$CLUSTER_DIR" "$KUBECONFIG_PATH"
  say "removed $CLUSTER_DIR"
fi
