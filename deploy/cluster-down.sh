#!/usr/bin/env bash
# Stops the local control plane started by deploy/cluster-up.sh, by PID: TERM, then KILL after 10s.
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

pids=$CLUSTER_DIR/pids
# Reverse start order: the nodes' simulator first, etcd last.
for c in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
  f=$pids/$c
  if pid=$(component_pid "$c"); then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; say "killed $c (pid $pid)"; else say "stopped $c (pid $pid)"; fi
  fi
  rm -f "$f"
done
if $purge; then
  rm -rf "$CLUSTER_DIR" "$KUBECONFIG_PATH"
  say "removed $CLUSTER_DIR"
fi
