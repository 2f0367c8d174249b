#!/usr/bin/env bash
# The real node's network on this machine, fail-closed: nothing a pod or a test sends may leave it.
#   up    the node's LAN bridge ($NODE_BRIDGE, $NODE_IP), the pods' bridge ($POD_BRIDGE, $POD_GATEWAY),
#         forwarding and bridge netfilter, blackhole routes for the kwok pods', link-local and
#         shared (100.64/10) ranges, the service range onto the pods' bridge, and a routing
#         table for pods' packets whose default is a blackhole, so a pod reaches only this
#         machine's own networks whatever the policies say
#   down  removes what `up` added (the bridges, routes and rule)
# Idempotent. Needs root.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || die "the real node's network needs root"
command -v ip >/dev/null || die "ip is missing (Debian package iproute2)"

# Ranges nothing on this machine routes out: the kwok pods' range, cloud metadata
# (169.254.169.254) and carrier-grade NAT space. Tests put stand-ins for such addresses in network
# namespaces with more specific routes. The service range is routed to the pods' bridge instead
# (a blackhole would fail this machine's own connections before kube-proxy translates them): a
# ClusterIP kube-proxy has not programmed finds nobody there and goes no further.
BLACKHOLES=(10.244.0.0/16 169.254.0.0/16 100.64.0.0/10)

bridge_up() {
  local name=$1 addr=$2
  ip link show "$name" >/dev/null 2>&1 || ip link add "$name" type bridge
  # A bridge whose address was not set takes the lowest of its ports' (a test namespace joining
  # would change it), while MetalLB's speaker answers ARP with the address it saw at its start.
  [ "$(cat "/sys/class/net/$name/addr_assign_type")" = 3 ] \
    || ip link set "$name" address "$(cat "/sys/class/net/$name/address")"
  # (Captured first: with pipefail, grep -q closing the pipe early would count as a failure.)
  local addrs
  addrs=$(ip addr show dev "$name")
  grep -q "inet $addr " <<<"$addrs" || ip addr add "$addr" dev "$name"
  ip link set "$name" up
}

up() {
  sysctl -qw net.ipv4.ip_forward=1
  sysctl -qw net.bridge.bridge-nf-call-iptables=1
  sysctl -qw net.bridge.bridge-nf-call-ip6tables=1
  bridge_up "$NODE_BRIDGE" "$NODE_IP/$NODE_PREFIX"
  bridge_up "$POD_BRIDGE" "$POD_GATEWAY/${POD_CIDR#*/}"
  local range
  for range in "${BLACKHOLES[@]}"; do
    ip route replace blackhole "$range"
  done
  ip route replace "$SERVICE_CIDR" dev "$POD_BRIDGE"
  # Without its bridge the pods' range must not fall to the default route either.
  ip route replace blackhole "$POD_CIDR" metric 4000
  # Pods' packets (those arriving from their bridge; this machine's own may use the bridge's
  # address as source): only this machine's networks. Local addresses are found before this rule.
  ip route replace "$POD_CIDR" dev "$POD_BRIDGE" table "$POD_ROUTE_TABLE"
  ip route replace "$(network_of "$NODE_IP/$NODE_PREFIX")" dev "$NODE_BRIDGE" table "$POD_ROUTE_TABLE"
  ip route replace blackhole default table "$POD_ROUTE_TABLE"
  local rules
  rules=$(ip rule show)
  grep -q "from $POD_CIDR iif $POD_BRIDGE lookup $POD_ROUTE_TABLE" <<<"$rules" \
    || ip rule add from "$POD_CIDR" iif "$POD_BRIDGE" lookup "$POD_ROUTE_TABLE" priority 1000
}

down() {
  ip rule del from "$POD_CIDR" iif "$POD_BRIDGE" lookup "$POD_ROUTE_TABLE" priority 1000 2>/dev/null || true
  ip route flush table "$POD_ROUTE_TABLE" 2>/dev/null || true
  local range
  for range in "${BLACKHOLES[@]}"; do ip route del blackhole "$range" 2>/dev/null || true; done
  ip route del blackhole "$POD_CIDR" metric 4000 2>/dev/null || true
  ip route del "$SERVICE_CIDR" dev "$POD_BRIDGE" 2>/dev/null || true
  ip link del "$POD_BRIDGE" 2>/dev/null || true
  ip link del "$NODE_BRIDGE" 2>/dev/null || true
}

# network_of 10.87.0.1/24 → 10.87.0.0/24
network_of() {
  local ip=${1%/*} prefix=${1#*/} a b c d n
  IFS=. read -r a b c d <<<"$ip"
  n=$(( (a << 24 | b << 16 | c << 8 | d) & ((0xffffffff << (32 - prefix)) & 0xffffffff) ))
  printf '%d.%d.%d.%d/%d\n' $((n >> 24 & 255)) $((n >> 16 & 255)) $((n >> 8 & 255)) $((n & 255)) "$prefix"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  *) die "usage: $0 up|down" ;;
esac
