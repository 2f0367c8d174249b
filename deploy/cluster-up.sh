#!/usr/bin/env bash
# Starts the local control plane on 127.0.0.1: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler and kwok (fake nodes and kubelets), then creates the kwok nodes of deploy/nodes.yaml
# and waits until they are Ready. Builds the binaries first if they are not cached.
# If the control plane is already running and healthy, it is reused.
# Prints the kubeconfig path on stdout; progress goes to stderr.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
# Only the kubeconfig path goes to stdout (fd 3); everything else, including tools' output, to stderr.
exec 3>&1 1>&2

mkdir -p "$CLUSTER_DIR"
exec 9>"$CLUSTER_DIR/lock"
flock 9

TOOLS=$(tool_dir)
kubectl() { "$TOOLS/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }
pki=$CLUSTER_DIR/pki
logs=$CLUSTER_DIR/logs
pids=$CLUSTER_DIR/pids

apiserver_ready() {
  curl -sf --max-time 2 --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
    "https://127.0.0.1:$APISERVER_PORT/readyz" >/dev/null 2>&1
}

if cluster_running; then
  log "control plane already running (kubeconfig $KUBECONFIG_PATH)"
  echo "$KUBECONFIG_PATH" >&3
  exit 0
fi

# Anything half-running from an earlier start is stopped first, so we start from a clean state.
"$DEPLOY_DIR/cluster-down.sh" --quiet || true

# Another checkout's control plane (its own .local) on the same ports would be joined half-way:
# its tests' objects in ours, and its stop killing our run. Refuse with what holds the port.
for port in "$APISERVER_PORT" "$ETCD_CLIENT_PORT" "$ETCD_PEER_PORT" "$KWOK_PORT"; do
  if holder=$(ss -Htlnp "sport = :$port" 2>/dev/null) && [ -n "$holder" ]; then
    die "port $port is already in use, probably by another checkout's control plane; stop it with that checkout's deploy/cluster-down.sh, or choose other ports (deploy/cluster.env): $holder"
  fi
done

"$DEPLOY_DIR/build-k8s.sh" >&2

# A start that fails part-way stops what it started: nothing is left half-running.
trap 'rc=$?; if [ $rc -ne 0 ]; then log "start failed; stopping what was started"; "$DEPLOY_DIR/cluster-down.sh" --quiet; fi' EXIT

rm -rf "$CLUSTER_DIR/etcd-data" "$logs" "$pids"
mkdir -p "$logs" "$pids"
if real_node_enabled; then
  # The node's network comes first: the API server advertises the node's address to pods.
  "$DEPLOY_DIR/node-network.sh" up
  NODE_IP=$NODE_IP NODE_NAME=$NODE_NAME "$DEPLOY_DIR/pki.sh" "$pki"
  apiserver_node_args=(
    # Pods reach the API server through the `kubernetes` Service at the node's address.
    --bind-address 0.0.0.0 --advertise-address "$NODE_IP"
    --authorization-mode Node,RBAC
    --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt"
    --kubelet-client-key "$pki/apiserver-kubelet-client.key"
    --kubelet-certificate-authority "$pki/ca.crt"
    --kubelet-preferred-address-types InternalIP
  )
  admission=,NodeRestriction
else
  "$DEPLOY_DIR/pki.sh" "$pki"
  apiserver_node_args=(--bind-address 127.0.0.1 --advertise-address 127.0.0.1
    --authorization-mode RBAC --endpoint-reconciler-type none)
  admission=
fi

# write_kubeconfig FILE CLIENT-CERT-NAME
write_kubeconfig() {
  cat >"$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: akash-local
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 "$pki/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $(base64 -w0 "$pki/$2.crt")
    client-key-data: $(base64 -w0 "$pki/$2.key")
contexts:
- name: akash-local
  context:
    cluster: akash-local
    user: $2
current-context: akash-local
KC
  chmod 600 "$1"
}
write_kubeconfig "$KUBECONFIG_PATH" admin
for c in controller-manager scheduler kwok; do write_kubeconfig "$CLUSTER_DIR/$c.kubeconfig" "$c"; done

# start NAME ARGS...: runs a component in its own session, logging to logs/NAME.log.
start() {
  local name=$1; shift
  # 3>&- 9>&-: the component must hold neither our stdout pipe nor our lock.
  setsid "$TOOLS/$name" "$@" >"$logs/$name.log" 2>&1 </dev/null 3>&- 9>&- &
  echo $! >"$pids/$name"
  log "started $name (pid $!, log $logs/$name.log)"
}

# wait_for WHAT SECONDS COMMAND...: polls until COMMAND succeeds, printing progress.
wait_for() {
  local what=$1 limit=$2; shift 2
  local start=$SECONDS
  until "$@"; do
    if (( SECONDS - start >= limit )); then
      log "timed out after ${limit}s waiting for $what; last log lines:"
      tail -n 20 "$logs"/*.log >&2 || true
      exit 1
    fi
    if (( (SECONDS - start) % 10 == 9 )); then log "still waiting for $what ($((SECONDS - start))s)"; fi
    sleep 1
  done
  log "$what ready after $((SECONDS - start))s"
}

start etcd \
  --name akash-local --data-dir "$CLUSTER_DIR/etcd-data" \
  --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "akash-local=http://127.0.0.1:$ETCD_PEER_PORT" \
  --listen-metrics-urls "" --unsafe-no-fsync --quota-backend-bytes 4294967296
wait_for etcd 60 curl -sf --max-time 2 "http://127.0.0.1:$ETCD_CLIENT_PORT/health"

start kube-apiserver \
  "${apiserver_node_args[@]}" --secure-port "$APISERVER_PORT" \
  --etcd-servers "http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --client-ca-file "$pki/ca.crt" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --service-cluster-ip-range "$SERVICE_CIDR" \
  --allow-privileged=true \
  --enable-admission-plugins "NamespaceLifecycle,ServiceAccount,PodSecurity,ResourceQuota,LimitRanger,DefaultStorageClass$admission"
wait_for kube-apiserver 120 apiserver_ready

start kube-controller-manager \
  --kubeconfig "$CLUSTER_DIR/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$CLUSTER_DIR/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$CLUSTER_DIR/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$CONTROLLER_MANAGER_PORT" \
  --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
  --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
  --use-service-account-credentials=true --leader-elect=false \
  --controllers '*'

start kube-scheduler \
  --kubeconfig "$CLUSTER_DIR/scheduler.kubeconfig" \
  --authentication-kubeconfig "$CLUSTER_DIR/scheduler.kubeconfig" \
  --authorization-kubeconfig "$CLUSTER_DIR/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" --leader-elect=false

start kwok \
  --kubeconfig "$CLUSTER_DIR/kwok.kubeconfig" \
  --config "$(cached_bin kwok-stages "$KWOK_VERSION").yaml" \
  --manage-all-nodes=false \
  --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
  --manage-nodes-with-label-selector= \
  --cidr 10.244.0.0/16 --node-ip 127.0.0.1 \
  --node-lease-duration-seconds 40 \
  --server-address "127.0.0.1:$KWOK_PORT"

kubectl apply -f "$DEPLOY_DIR/nodes.yaml" >&2
nodes_ready() {
  local want have
  want=$(grep -c '^kind: Node' "$DEPLOY_DIR/nodes.yaml")
  have=$(kubectl get nodes --no-headers 2>/dev/null | awk '$2=="Ready"' | wc -l)
  [ "$have" -ge "$want" ]
}
wait_for "kwok nodes" 90 nodes_ready
# The service-account controller creates `default` in each namespace; Pods need it.
sa_ready() { kubectl get serviceaccount default -n default -o name >/dev/null 2>&1; }
wait_for "controller-manager" 90 sa_ready
if real_node_enabled; then
  "$DEPLOY_DIR/node-up.sh"
else
  log "no real node (AKASH_REAL_NODE=0 or not root): kwok nodes only"
fi
kubectl get nodes -o wide >&2
echo "$KUBECONFIG_PATH" >&3
