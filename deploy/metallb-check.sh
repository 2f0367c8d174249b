#!/usr/bin/env bash
# Checks MetalLB on the running real node the way a leased IP is used: a pod of the test workload,
# two LoadBalancer Services on two ports sharing one address of the pool $METALLB_POOL
# (allow-shared-ip, under MetalLB's current and older annotation names), a client on the node's LAN
# (a network namespace with a veth in $NODE_BRIDGE) reaching both ports at that address (the
# speaker answers its ARP, kube-proxy translates), a NetworkPolicy that allows 0.0.0.0/0 on one
# port letting it through and keeping the other shut, the address released when the Services go (a
# new Service asking for it gets it), and a pool of the check's own announced too. Cleans up after
# itself, on failure as well. Needs root and the node up.
# Environment: CHECK_CLIENT_IP (10.87.0.50), CHECK_POOL_RANGE (10.87.0.230-10.87.0.231).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || die "needs root (a network namespace on $NODE_BRIDGE)"
CLIENT_IP=${CHECK_CLIENT_IP:-10.87.0.50}
CHECK_POOL_RANGE=${CHECK_POOL_RANGE:-10.87.0.230-10.87.0.231}
NS=metallb-check          # the namespace of the pod and Services, and the network namespace
CHECK_POOL=metallb-check  # the check's own IPAddressPool
HOST_VETH=mlbcheck-h INNER_VETH=mlbcheck-n
KEY=metallb-check
MESSAGE="metallb check $$"
kubectl() { "$(tool_dir)/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }
in_client() { ip netns exec "$NS" "$@"; }

cleanup() {
  ip netns del "$NS" 2>/dev/null || true
  ip link del "$HOST_VETH" 2>/dev/null || true
  kubectl delete namespace "$NS" --ignore-not-found --wait=true --timeout=90s >/dev/null 2>&1 || true
  kubectl -n metallb-system delete ipaddresspools.metallb.io "$CHECK_POOL" --ignore-not-found >/dev/null 2>&1 || true
}
failed() { log "FAILED: $*"; exit 1; }
trap 'rc=$?; cleanup; [ $rc = 0 ] && log "metallb-check: all passed" || log "metallb-check: failed, cleaned up"; exit $rc' EXIT
trap 'exit 130' INT TERM

# until SECONDS COMMAND...: polls COMMAND every half second.
until_ok() {
  local limit=$1 begin=$SECONDS; shift
  until "$@" >/dev/null 2>&1; do
    (( SECONDS - begin < limit )) || return 1
    sleep 0.5
  done
}

kubectl -n metallb-system rollout status deployment/controller --timeout=10s >/dev/null \
  && kubectl -n metallb-system rollout status daemonset/speaker --timeout=10s >/dev/null \
  || die "MetalLB is not running (deploy/cluster-up.sh as root starts the node with it)"
cleanup

# --- a pod answering HTTP on 8080 and 9000 ----------------------------------------------------------
kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: $NS}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: $NS, labels: {app: web}}
spec:
  nodeSelector: {type: real}
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: $REGISTRY/akash/workload:1
    env:
    - {name: PORTS, value: "8080 9000"}
    - {name: MESSAGE, value: "$MESSAGE"}
    readinessProbe:
      tcpSocket: {port: 9000}
      periodSeconds: 1
    securityContext:
      runAsNonRoot: true
      runAsUser: 65532
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL]}
YAML
kubectl -n "$NS" wait pod/web --for condition=Ready --timeout=90s >/dev/null || failed "pod web not ready"
log "pod $NS/web ready at $(kubectl -n "$NS" get pod web -o jsonpath='{.status.podIP}')"

# lb_service NAME PORT [ANNOTATION=VALUE...]: a LoadBalancer Service for the pod on PORT.
lb_service() {
  local name=$1 port=$2 a annotations=""; shift 2
  for a in "$@"; do annotations+="    ${a%%=*}: \"${a#*=}\""$'\n'; done
  kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Service
metadata:
  name: $name
  namespace: $NS
  annotations:
$annotations
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{name: http, port: $port, targetPort: $port, protocol: TCP}]
YAML
}
lb_ip() { kubectl -n "$NS" get service "$1" -o jsonpath='{.status.loadBalancer.ingress[0].ip}'; }
has_ip() { [ -n "$(lb_ip "$1")" ]; }
ip_int() { local a b c d; IFS=. read -r a b c d <<<"$1"; echo $(( a << 24 | b << 16 | c << 8 | d )); }
in_range() { # IP A-B
  local ip range=$2
  ip=$(ip_int "$1")
  (( ip >= $(ip_int "${range%-*}") && ip <= $(ip_int "${range#*-}") ))
}

# --- two Services, one address ------------------------------------------------------------------------
# web-a names them as MetalLB 0.14.9+ does, web-b by their older names (still honoured; MetalLB
# warns with an event): one key either way.
lb_service web-a 8080 metallb.io/allow-shared-ip="$KEY" metallb.io/address-pool="$METALLB_POOL"
lb_service web-b 9000 metallb.universe.tf/allow-shared-ip="$KEY" metallb.universe.tf/address-pool="$METALLB_POOL"
until_ok 30 has_ip web-a && until_ok 30 has_ip web-b || failed "no address for web-a/web-b: $(kubectl -n "$NS" get events -o custom-columns=REASON:.reason,MESSAGE:.message --no-headers | tail -3)"
ip_a=$(lb_ip web-a) ip_b=$(lb_ip web-b)
log "web-a (8080) got $ip_a, web-b (9000) got $ip_b"
[ "$ip_a" = "$ip_b" ] || failed "the Services do not share one address"
in_range "$ip_a" "$METALLB_POOL_RANGE" || failed "$ip_a is not in pool $METALLB_POOL ($METALLB_POOL_RANGE)"
LB_IP=$ip_a
log "shared: $LB_IP, in pool $METALLB_POOL ($METALLB_POOL_RANGE)"

# --- a client on the node's LAN -----------------------------------------------------------------------
ip netns add "$NS"
ip -n "$NS" link set lo up
ip link add "$HOST_VETH" type veth peer name "$INNER_VETH"
ip link set "$INNER_VETH" netns "$NS"
ip link set "$HOST_VETH" master "$NODE_BRIDGE" up
ip -n "$NS" addr add "$CLIENT_IP/$NODE_PREFIX" dev "$INNER_VETH"
ip -n "$NS" link set "$INNER_VETH" up
# get PORT: the body the client fetches from the shared address.
get() { in_client curl -s --max-time 3 "http://$LB_IP:$1/"; }
answers() { get "$1" | grep -qF "$MESSAGE"; }
for port in 8080 9000; do
  until_ok 30 answers "$port" || failed "the client $CLIENT_IP got no answer from $LB_IP:$port"
  log "client $CLIENT_IP -> $LB_IP:$port: $(get "$port" | head -1)"
done
bridge_mac=$(cat "/sys/class/net/$NODE_BRIDGE/address")
neigh=$(in_client ip neigh show "$LB_IP")
grep -q "lladdr $bridge_mac" <<<"$neigh" || failed "$LB_IP is not at $NODE_BRIDGE's address $bridge_mac: $neigh"
log "ARP: $neigh ($NODE_BRIDGE is $bridge_mac)"

# --- NetworkPolicy: ingress from 0.0.0.0/0 on 8080 only -------------------------------------------
kubectl apply -f - >/dev/null <<YAML
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-8080-from-anywhere, namespace: $NS}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
  ingress:
  - from: [{ipBlock: {cidr: 0.0.0.0/0}}]
    ports: [{port: 8080, protocol: TCP}]
YAML
shut() { ! answers "$1"; }
until_ok 30 shut 9000 || failed "9000 still answers under a policy that allows only 8080"
answers 8080 || failed "8080 is blocked by a policy that allows it from 0.0.0.0/0"
log "NetworkPolicy (0.0.0.0/0 on 8080): 8080 answers, 9000 is shut"
kubectl -n "$NS" delete networkpolicy web-8080-from-anywhere >/dev/null

# --- the address released ----------------------------------------------------------------------------
kubectl -n "$NS" delete service web-a web-b --wait=true >/dev/null
lb_service web-c 8080 metallb.io/address-pool="$METALLB_POOL" metallb.io/loadBalancerIPs="$LB_IP"
until_ok 30 has_ip web-c || failed "$LB_IP was not released: web-c got no address"
[ "$(lb_ip web-c)" = "$LB_IP" ] || failed "web-c got $(lb_ip web-c), not $LB_IP"
until_ok 30 answers 8080 || failed "web-c does not answer on $LB_IP:8080"
log "after deleting web-a and web-b, web-c got $LB_IP again and answers"

# --- a pool of the check's own ------------------------------------------------------------------------
kubectl apply -f - >/dev/null <<YAML
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: $CHECK_POOL, namespace: metallb-system}
spec:
  addresses: [$CHECK_POOL_RANGE]
  autoAssign: false
YAML
lb_service web-d 9000 metallb.io/address-pool="$CHECK_POOL"
until_ok 30 has_ip web-d || failed "web-d got no address of pool $CHECK_POOL"
LB_IP=$(lb_ip web-d)
in_range "$LB_IP" "$CHECK_POOL_RANGE" || failed "web-d got $LB_IP, not in $CHECK_POOL_RANGE"
until_ok 30 answers 9000 || failed "web-d does not answer on $LB_IP:9000"
pool_size() { kubectl -n metallb-system get ipaddresspools.metallb.io "$CHECK_POOL" -o jsonpath='{.status.assignedIPv4}/{.status.availableIPv4}'; }
log "pool $CHECK_POOL ($CHECK_POOL_RANGE): web-d got $LB_IP and answers; assigned/available $(pool_size)"
