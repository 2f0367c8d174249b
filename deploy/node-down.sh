#!/usr/bin/env bash
# Stops the real node started by deploy/node-up.sh and leaves nothing of it running: its pods'
# processes (MetalLB's speaker among them: it writes no iptables rules), the containerd shims, mounts
# and network namespaces (deploy/metallb-check.sh's too), kube-proxy's and kube-router's iptables
# rules, the host processes, then the node's network (deploy/node-network.sh down).
# --purge also deletes its state (containerd's images and snapshots, volumes, logs).
# Tolerant: whatever is already gone is skipped, and one failing step does not stop the others.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
quiet= purge=false
for a in "$@"; do
  case $a in
    --quiet) quiet=1 ;;
    --purge) purge=true ;;
    *) die "unknown argument '$a' (known: --quiet --purge)" ;;
  esac
done
say() { [ -n "$quiet" ] || log "$@"; }
[ "$(id -u)" = 0 ] || exit 0
# The network, iptables chains and ipsets are the machine's, not this state directory's: they are
# torn down only by the state directory that ran a node (another checkout's control plane, with
# AKASH_REAL_NODE=0, must not take them from under a running node).
[ -d "$NODE_DIR" ] || exit 0

TOOLS=$(tool_dir)
ctrd=$NODE_DIR/containerd
pids=$NODE_DIR/pids

stop() {
  local pid
  if pid=$(node_component_pid "$1"); then stop_pid "$1" "$pid" $quiet; fi
  rm -f "$pids/$1"
}

# The kubelet first, so that it restarts nothing; then every process of every pod (they live in
# the kubelet's cgroups under /akash-node), then the shims, then containerd.
stop kube-router
stop kube-proxy
stop kubelet
for cg in /sys/fs/cgroup/pids/akash-node /sys/fs/cgroup/memory/akash-node; do
  [ -d "$cg" ] || continue
  find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u | xargs -r kill -KILL 2>/dev/null || true
done
pgrep -f "containerd-shim-runc-v2[^ ]* .*-address $ctrd/containerd.sock" | xargs -r kill -KILL 2>/dev/null || true
stop containerd
stop registry

# Left behind by killed containers: mounts under the node's state, CNI network namespaces, and the
# cgroups the kubelet made.
grep -o " $NODE_DIR[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
# (metallb-check: the client namespace of deploy/metallb-check.sh, had it been killed.)
for ns in $(ip netns list 2>/dev/null | awk '/^cni-/ || $1 == "metallb-check" {print $1}'); do
  ip netns del "$ns" 2>/dev/null || { umount -l "/run/netns/$ns" 2>/dev/null; rm -f "/run/netns/$ns" 2>/dev/null; }
done
for controller in /sys/fs/cgroup/*/; do
  [ -d "$controller/akash-node" ] || continue
  find "$controller/akash-node" -depth -type d -exec rmdir {} \; 2>/dev/null || true
done

# The rules kube-proxy and kube-router wrote.
if [ -x "$TOOLS/kube-proxy" ]; then "$TOOLS/kube-proxy" --cleanup >/dev/null 2>&1 || true; fi
for table in filter nat mangle raw; do
  for chain in $(iptables -t "$table" -S 2>/dev/null | awk '/^-N (KUBE-|CNI-)/ {print $2}'); do
    iptables -t "$table" -S 2>/dev/null | awk -v c="$chain" '$1=="-A" && $0 ~ "-j "c"( |$)" {sub("^-A","-D"); print}' \
      | while read -r rule; do eval "iptables -t $table $rule" 2>/dev/null || true; done
  done
  for chain in $(iptables -t "$table" -S 2>/dev/null | awk '/^-N (KUBE-|CNI-)/ {print $2}'); do
    iptables -t "$table" -F "$chain" 2>/dev/null || true
  done
  for chain in $(iptables -t "$table" -S 2>/dev/null | awk '/^-N (KUBE-|CNI-)/ {print $2}'); do
    iptables -t "$table" -X "$chain" 2>/dev/null || true
  done
done
ipset list -n 2>/dev/null | grep -E '^(KUBE-|kube-router)' | xargs -r -n1 ipset destroy 2>/dev/null || true

"$DEPLOY_DIR/node-network.sh" down
say "node stopped"
if $purge; then
  rm -rf "$NODE_DIR"
  say "removed $NODE_DIR"
fi
