#!/usr/bin/env bash
# Starts the real node beside the kwok nodes: a local image registry, containerd (runc, CNI bridge),
# the kubelet, kube-proxy (iptables) and kube-router's NetworkPolicy firewall as host processes, then
# the cluster add-ons as pods on the node: CoreDNS behind the kube-dns Service, Traefik for Ingresses
# of class $INGRESS_CLASS, local-path-provisioner as the `beta2` storage class, and MetalLB (L2 mode:
# LoadBalancer Services get addresses of the pool $METALLB_POOL_RANGE, announced on $NODE_BRIDGE).
# Called by deploy/cluster-up.sh after the control plane is up (with deploy/node-network.sh up
# before it); reuses what is already running. Needs root. Progress goes to stderr.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
exec 1>&2

[ "$(id -u)" = 0 ] || die "the real node needs root (kubelet, containerd, iptables); set AKASH_REAL_NODE=0 for kwok only"
for tool in runc iptables ipset umoci skopeo docker-registry busybox gcc; do
  command -v "$tool" >/dev/null || die "$tool is missing (see .ci/run for the Debian packages the node needs)"
done
[ -x /usr/lib/cni/bridge ] || die "/usr/lib/cni/bridge is missing (Debian package containernetworking-plugins)"

TOOLS=$(tool_dir)
pki=$CLUSTER_DIR/pki
logs=$NODE_DIR/logs
pids=$NODE_DIR/pids
mkdir -p "$logs" "$pids" "$NODE_DIR/cni" "$NODE_DIR/volumes"
kubectl() { "$TOOLS/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }
export PATH="$TOOLS:$PATH"

"$DEPLOY_DIR/build-k8s.sh" node

# start NAME BINARY ARGS...: a node process in its own session, logging to logs/NAME.log.
started=()
start() {
  local name=$1 bin=$2; shift 2
  started+=("$name")
  if node_component_pid "$name" >/dev/null; then log "$name already running"; return; fi
  setsid "$bin" "$@" >"$logs/$name.log" 2>&1 </dev/null 3>&- 9>&- &
  local pid=$! want i
  echo "$pid" >"$pids/$name"
  # Until the binary is exec'd the PID is this shell, then setsid, and while exec runs its command
  # line can read empty: the liveness check would take any of those for an exited component.
  # Wait until the PID runs the binary itself.
  want=$(readlink -f "$bin")
  for i in $(seq 1 100); do
    [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$want" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  log "started $name (pid $pid, log $logs/$name.log)"
}

# wait_for WHAT SECONDS COMMAND...: polls COMMAND; fails at once when a node process has died.
wait_for() {
  local what=$1 limit=$2; shift 2
  local begin=$SECONDS c
  until "$@" >/dev/null 2>&1; do
    for c in "${started[@]}"; do
      # Looked at twice: one look can fall in the moment a process replaces its image.
      if ! node_component_pid "$c" >/dev/null && { sleep 0.5; ! node_component_pid "$c" >/dev/null; }; then
        log "$c exited while waiting for $what; last lines of $logs/$c.log:"
        tail -n 20 "$logs/$c.log" || true
        exit 1
      fi
    done
    if (( SECONDS - begin >= limit )); then
      log "timed out after ${limit}s waiting for $what; last log lines:"
      tail -n 15 "$logs"/*.log || true
      exit 1
    fi
    if (( (SECONDS - begin) % 15 == 14 )); then log "still waiting for $what ($((SECONDS - begin))s)"; fi
    sleep 1
  done
  log "$what ready after $((SECONDS - begin))s"
}

write_kubeconfig() { # FILE CERT-NAME
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
  context: {cluster: akash-local, user: $2}
current-context: akash-local
KC
  chmod 600 "$1"
}

# --- the image registry, and the images every node part runs --------------------------------------
mkdir -p "$AKASH_CACHE/registry"
cat >"$NODE_DIR/registry.yml" <<CFG
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $AKASH_CACHE/registry}
  delete: {enabled: true}
http:
  addr: 127.0.0.1:$REGISTRY_PORT
CFG
start registry "$(command -v docker-registry)" serve "$NODE_DIR/registry.yml"
wait_for "the registry" 30 curl -sf "http://$REGISTRY/v2/"
"$DEPLOY_DIR/build-images.sh"

# --- containerd ----------------------------------------------------------------------------------
ctrd=$NODE_DIR/containerd
mkdir -p "$ctrd/certs.d/$REGISTRY" "$ctrd/certs.d/docker.io" "$ctrd/certs.d/_default" "$NODE_DIR/cni"
# Every pull goes to the local registry: localhost over plain HTTP, and docker.io (where short
# names like `nginx` point) and every other registry (_default) mirrored there with no fallback,
# so no pull leaves this machine.
cat >"$ctrd/certs.d/$REGISTRY/hosts.toml" <<TOML
server = "http://$REGISTRY"
[host."http://$REGISTRY"]
  capabilities = ["pull", "resolve", "push"]
TOML
for mirrored in docker.io _default; do
  cat >"$ctrd/certs.d/$mirrored/hosts.toml" <<TOML
server = "http://$REGISTRY"
[host."http://$REGISTRY"]
  capabilities = ["pull", "resolve"]
TOML
done
cat >"$ctrd/config.toml" <<TOML
version = 3
root = "$ctrd/root"
state = "$ctrd/state"
[grpc]
  address = "$ctrd/containerd.sock"
[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = '$REGISTRY/akash/pause:1'
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = '$ctrd/certs.d'
[plugins.'io.containerd.cri.v1.runtime']
  # Nothing here may lower oom_score_adj below 0, which the pod sandbox asks for.
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = 'runc'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = '$(command -v runc)'
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ['/usr/lib/cni']
    conf_dir = '$NODE_DIR/cni'
[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = '127.0.0.1'
TOML
cat >"$NODE_DIR/cni/10-akash.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "akash-pods",
  "plugins": [
    {
      "type": "bridge", "bridge": "$POD_BRIDGE", "isGateway": true, "ipMasq": false,
      "hairpinMode": true,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$POD_GATEWAY"}]],
               "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$NODE_DIR/cni-ipam"}
    },
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
JSON
start containerd "$TOOLS/containerd" --config "$ctrd/config.toml"
wait_for containerd 60 test -S "$ctrd/containerd.sock"

# --- kubelet ---------------------------------------------------------------------------------------
kubelet_dir=$NODE_DIR/kubelet
mkdir -p "$kubelet_dir"
write_kubeconfig "$NODE_DIR/kubelet.kubeconfig" "kubelet-$NODE_NAME"
write_kubeconfig "$NODE_DIR/kube-proxy.kubeconfig" kube-proxy
write_kubeconfig "$NODE_DIR/kube-router.kubeconfig" kube-router
# Pods whose DNS policy is Default get this: nothing outside the cluster answers here.
printf 'nameserver %s\n' "$CLUSTER_DNS" >"$NODE_DIR/resolv.conf"
cat >"$NODE_DIR/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine has hybrid cgroups (v1 controllers) and PID 1 is not systemd.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /akash-node
containerRuntimeEndpoint: unix://$ctrd/containerd.sock
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 0
tlsCertFile: $pki/kubelet-serving-$NODE_NAME.crt
tlsPrivateKeyFile: $pki/kubelet-serving-$NODE_NAME.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
clusterDomain: cluster.local
clusterDNS: [$CLUSTER_DNS]
resolvConf: $NODE_DIR/resolv.conf
failSwapOn: false
# The disk is shared with everything else on this machine: no disk-pressure evictions.
evictionHard: {memory.available: "100Mi"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
localStorageCapacityIsolation: true
serializeImagePulls: false
maxPods: 110
podPidsLimit: 4096
staticPodPath: ""
YAML
# The kubelet's cgroup root must exist in every v1 hierarchy; a new cpuset needs its CPUs and memory
# nodes before it can hold a process.
for controller in /sys/fs/cgroup/*/; do
  [ -f "$controller/cgroup.procs" ] || continue
  mkdir -p "$controller/akash-node"
  for f in cpuset.cpus cpuset.mems; do
    [ -f "$controller/$f" ] && [ -z "$(cat "$controller/akash-node/$f")" ] && cat "$controller/$f" >"$controller/akash-node/$f"
  done
done
start kubelet "$TOOLS/kubelet" \
  --config "$NODE_DIR/kubelet.yaml" --kubeconfig "$NODE_DIR/kubelet.kubeconfig" \
  --root-dir "$kubelet_dir" --cert-dir "$kubelet_dir/pki" \
  --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" \
  --node-labels "type=real,akash.network=true,akash.network/capabilities.storage.class.beta2=1,akash.network/capabilities.storage.class.default=1" \
  --v 1
node_ready() { kubectl get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep True >/dev/null; }
wait_for "node $NODE_NAME" 120 node_ready

# --- add-ons: DNS, ingress, volumes; and the rights of the API server and kube-router -------------
sed -e "s|@REGISTRY@|$REGISTRY|g" -e "s|@CLUSTER_DNS@|$CLUSTER_DNS|g" \
    -e "s|@COREDNS_VERSION@|$COREDNS_VERSION|g" -e "s|@TRAEFIK_VERSION@|$TRAEFIK_VERSION|g" \
    -e "s|@LOCAL_PATH_PROVISIONER_VERSION@|$LOCAL_PATH_PROVISIONER_VERSION|g" \
    -e "s|@NODE_NAME@|$NODE_NAME|g" -e "s|@VOLUMES_DIR@|$NODE_DIR/volumes|g" \
    "$DEPLOY_DIR/node-addons.yaml" | kubectl apply --server-side --force-conflicts -f - >/dev/null

# MetalLB: its CRDs (cached from its module by build-k8s.sh), then deploy/metallb.yaml.
kubectl apply --server-side --force-conflicts -f "$(cached_bin metallb-crds "$METALLB_VERSION").yaml" >/dev/null
kubectl wait --for condition=Established --timeout 60s \
  crd/ipaddresspools.metallb.io crd/l2advertisements.metallb.io >/dev/null
# RE2 (Go's regexp) has no negative lookahead: the names that are not exactly NAME are those
# longer than it, or ending early, or differing at some position.
all_but() {
  local name=$1 i prefix quoted=()
  [[ $name =~ ^[A-Za-z0-9_.-]+$ ]] || die "unexpected interface name '$name'"
  local escaped=${name//./\\.}
  quoted+=("'^${escaped}.'")
  for ((i = 0; i < ${#name}; i++)); do
    prefix=${name:0:i}
    prefix=${prefix//./\\.}
    quoted+=("'^${prefix}\$'" "'^${prefix}[^${name:i:1}]'")
  done
  local IFS=,
  echo "[${quoted[*]}]"
}
sed_value() { sed -e 's/[\\&|]/\\&/g' <<<"$1"; }
sed -e "s|@REGISTRY@|$REGISTRY|g" -e "s|@METALLB_VERSION@|$METALLB_VERSION|g" \
    -e "s|@NODE_BRIDGE@|$NODE_BRIDGE|g" -e "s|@METALLB_POOL@|$METALLB_POOL|g" \
    -e "s|@METALLB_POOL_RANGE@|$METALLB_POOL_RANGE|g" \
    -e "s|@METALLB_SPEAKER_METRICS_PORT@|$METALLB_SPEAKER_METRICS_PORT|g" \
    -e "s|@METALLB_SPEAKER_HEALTH_PORT@|$METALLB_SPEAKER_HEALTH_PORT|g" \
    -e "s|@METALLB_EXCLUDE@|$(sed_value "$(all_but "$NODE_BRIDGE")")|g" \
    "$DEPLOY_DIR/metallb.yaml" | kubectl apply --server-side --force-conflicts -f - >/dev/null

# --- kube-proxy and kube-router --------------------------------------------------------------------
cat >"$NODE_DIR/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $NODE_DIR/kube-proxy.kubeconfig}
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
bindAddress: $NODE_IP
metricsBindAddress: 127.0.0.1:$KUBE_PROXY_METRICS_PORT
healthzBindAddress: ""
# Left as the machine has it: the conntrack table size is not ours to set.
conntrack: {maxPerCore: 0}
nodePortAddresses: ["$NODE_IP/32"]
YAML
start kube-proxy "$TOOLS/kube-proxy" --config "$NODE_DIR/kube-proxy.yaml"
proxy_rules() { iptables -t nat -S KUBE-SERVICES | grep 'default/kubernetes:https' >/dev/null; }
wait_for "kube-proxy's Service rules" 60 proxy_rules

start kube-router "$TOOLS/kube-router" \
  --kubeconfig "$NODE_DIR/kube-router.kubeconfig" --hostname-override "$NODE_NAME" \
  --run-firewall=true --run-router=false --run-service-proxy=false \
  --metrics-port "$KUBE_ROUTER_METRICS_PORT" --health-port 0 --v 1
router_chains() { iptables -S KUBE-ROUTER-FORWARD; }
wait_for "kube-router's firewall" 60 router_chains

# --- the add-ons running ---------------------------------------------------------------------------
rollout() { kubectl -n "$1" rollout status "deployment/$2" --timeout=5s; }
wait_for "CoreDNS" 180 rollout kube-system coredns
wait_for "Traefik" 120 rollout traefik traefik
wait_for "local-path-provisioner" 120 rollout local-path-storage local-path-provisioner
wait_for "MetalLB's controller" 120 rollout metallb-system controller
speaker_rollout() { kubectl -n metallb-system rollout status daemonset/speaker --timeout=5s; }
wait_for "MetalLB's speaker" 120 speaker_rollout
# Both have loaded the pools and advertisements, and found them valid.
metallb_config() {
  local state
  for state in controller "speaker-$NODE_NAME"; do
    [ "$(kubectl -n metallb-system get configurationstates.metallb.io "$state" -o jsonpath='{.status.result}')" = Valid ] || return 1
  done
}
wait_for "MetalLB's configuration" 60 metallb_config
log "node $NODE_NAME is up: $NODE_IP, pods $POD_CIDR, DNS $CLUSTER_DNS, ingress http://$NODE_IP:80, LoadBalancer pool $METALLB_POOL ($METALLB_POOL_RANGE)"
