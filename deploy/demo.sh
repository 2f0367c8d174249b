#!/usr/bin/env bash
# The one-command demo: a provider and a tenant on a local devnet and the local control plane.
#
#   deploy/demo.sh          build (cached), start the devnet and the control plane, install the chart,
#                           run the provider and the tenant controller, deploy an SDL as a Manifest
#                           and show its lease and endpoints; everything keeps running afterwards
#   deploy/demo.sh down     stop everything the demo started (Ctrl-C during a start does the same)
#   deploy/demo.sh status   show the lease and the Manifest of a running demo
#
# With the real node (deploy/cluster-up.sh as root), the chart runs the provider and the tenant
# controller as pods from the image built here, the devnet listens on the node's address, the
# tenant's app runs in a container and the demo ends with its answer through the ingress
# controller. Without it (kwok only), the chart's Deployments get zero replicas and the same two
# programs run on this machine instead, each with a token of the ServiceAccount the chart made for
# it: what they may do is exactly what the chart grants.
#
# Settings (environment; the defaults are for a person at a terminal):
#   DEMO_DIR                state, logs (*.log) and PIDs            [.local/demo]
#   DEMO_KUBECONFIG         use this control plane; never started or stopped by the demo
#                           [default: deploy/cluster-up.sh, reusing a running one; stopped by
#                           `down` only if the demo started it]
#   DEMO_REUSE_BUILD=1      build nothing; take the binaries from DEMO_BIN_DIR [$CARGO_TARGET_DIR/debug]
#   DEMO_NAMESPACE          the chart's namespace                  [akash-provider]
#   DEMO_TENANT_NAMESPACE   the Manifest's namespace               [demo]
#   DEMO_SDL                the SDL deployed   [real node: deploy/demo/hello.yaml;
#                                               kwok only: testdata/sdl/awesome-akash/openspeedtest.yaml]
#   DEMO_GATEWAY_NODE_PORT  the gateway's node port (real node)    [30443]
#   DEMO_BLOCK_TIME         the devnet's block time                [1s]
#   DEMO_DSEQ               the deployment sequence                [the chain height]
#   DEMO_RPC_PORT, DEMO_GRPC_PORT                    devnet        [26657, 9090]
#   DEMO_GATEWAY_PORT, DEMO_GATEWAY_GRPC_PORT        gateway       [8443, 8444]
#   DEMO_METRICS_PORT, DEMO_TENANT_METRICS_PORT      /metrics      [8080, 8081]
#   DEMO_TIMEOUT            seconds to wait for the Manifest to run [180]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$REPO_DIR"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$AKASH_CACHE/target}

DEMO_DIR=${DEMO_DIR:-$AKASH_STATE_DIR/demo}
STATE=$DEMO_DIR/state.env
PIDS=$DEMO_DIR/pids
# The devnet's test accounts the two sides sign with (see its start banner).
PROVIDER_ACCOUNT=1
TENANT_ACCOUNT=2
RELEASE=akash-provider
MANIFEST_NAME=demo

step() { log "== $*"; }

# ---- settings and state ---------------------------------------------------------------------------

# The settings of a new start, from the environment.
load_settings() {
  NAMESPACE=${DEMO_NAMESPACE:-akash-provider}
  TENANT_NAMESPACE=${DEMO_TENANT_NAMESPACE:-demo}
  # pods: on the real node, as the chart runs them; host: kwok only, the programs on this machine.
  MODE=host
  CHAIN_IP=127.0.0.1
  SDL=${DEMO_SDL:-$REPO_DIR/testdata/sdl/awesome-akash/openspeedtest.yaml}
  GATEWAY_NODE_PORT=${DEMO_GATEWAY_NODE_PORT:-30443}
  IMAGE=""
  BLOCK_TIME=${DEMO_BLOCK_TIME:-1s}
  DSEQ=${DEMO_DSEQ:-}
  CHAIN_ID=akash-devnet-1
  RPC_PORT=${DEMO_RPC_PORT:-26657}
  GRPC_PORT=${DEMO_GRPC_PORT:-9090}
  GATEWAY_PORT=${DEMO_GATEWAY_PORT:-8443}
  GATEWAY_GRPC_PORT=${DEMO_GATEWAY_GRPC_PORT:-8444}
  METRICS_PORT=${DEMO_METRICS_PORT:-8080}
  TENANT_METRICS_PORT=${DEMO_TENANT_METRICS_PORT:-8081}
  TIMEOUT=${DEMO_TIMEOUT:-180}
  BIN_DIR=${DEMO_BIN_DIR:-$CARGO_TARGET_DIR/debug}
  KUBECONFIG_FILE=${DEMO_KUBECONFIG:-}
  STARTED_CLUSTER=false
  TENANT_ADDRESS=""
}

# Records what `down` needs, so that it works whatever the environment says then.
save_state() {
  local v
  : >"$STATE.tmp"
  for v in NAMESPACE TENANT_NAMESPACE BLOCK_TIME DSEQ CHAIN_ID RPC_PORT GATEWAY_PORT BIN_DIR \
    KUBECONFIG_FILE STARTED_CLUSTER TENANT_ADDRESS MODE CHAIN_IP GATEWAY_NODE_PORT; do
    printf '%s=%q\n' "$v" "${!v}" >>"$STATE.tmp"
  done
  mv "$STATE.tmp" "$STATE"
}

kubectl() { "$(tool_dir)/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }
helm() { "$(tool_dir)/helm" --kubeconfig "$KUBECONFIG_FILE" "$@"; }
provider_bin() { echo "$BIN_DIR/akash-provider"; }
cluster_reachable() { [ -n "$KUBECONFIG_FILE" ] && kubectl get --raw /readyz >/dev/null 2>&1; }

# ---- processes ------------------------------------------------------------------------------------

# The PID of a running demo process, from its PID file; its command line must still name $2, so
# that a reused PID is never signalled.
demo_pid() {
  local f=$PIDS/$1 pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$2" || return 1
  echo "$pid"
}

# spawn NAME COMMAND...: runs COMMAND in its own session (so a Ctrl-C reaches the trap, not it),
# logging to $DEMO_DIR/NAME.log, and records its PID.
spawn() {
  local name=$1; shift
  setsid "$@" >"$DEMO_DIR/$name.log" 2>&1 </dev/null 9>&- &
  echo $! >"$PIDS/$name"
  log "started $name (pid $!, log $DEMO_DIR/$name.log)"
}

# stop NAME PATTERN: TERM, then KILL after 10 s.
stop() {
  local pid
  if pid=$(demo_pid "$1" "$2"); then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
      log "killed $1 (pid $pid)"
    else
      log "stopped $1 (pid $pid)"
    fi
  fi
  rm -f "$PIDS/$1"
}

# Which of the demo's parts run: its processes, or with the real node the chart's pods.
running_processes() {
  local out=()
  demo_pid devnet akash-devnet >/dev/null && out+=(devnet)
  if [ "${MODE:-host}" = pods ]; then
    deployment_ready "$RELEASE" && out+=(provider)
    deployment_ready "$RELEASE-tenant" && out+=(tenant)
  else
    demo_pid provider "akash-provider run" >/dev/null && out+=(provider)
    demo_pid tenant "akash-provider tenant" >/dev/null && out+=(tenant)
  fi
  echo "${out[*]:-}"
}

deployment_ready() {
  [ -n "${KUBECONFIG_FILE:-}" ] || return 1
  [ "$(kubectl -n "$NAMESPACE" get deployment "$1" -o jsonpath='{.status.readyReplicas}' 2>/dev/null)" = 1 ]
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_until WHAT SECONDS COMMAND...: polls every half second; fails after SECONDS.
wait_until() {
  local what=$1 limit=$2; shift 2
  local start=$SECONDS
  until "$@"; do
    if (( SECONDS - start >= limit )); then
      log "timed out after ${limit}s waiting for: $what (logs: $DEMO_DIR/*.log)"
      return 1
    fi
    sleep 0.5
  done
  log "$what after $((SECONDS - start))s"
}

# strip_finalizers NAMESPACE RESOURCE: for objects whose controller is stopped.
strip_finalizers() {
  local o
  for o in $(kubectl -n "$1" get "$2" -o name 2>/dev/null); do
    kubectl -n "$1" patch "$o" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 || true
  done
}

# ---- the start, step by step ----------------------------------------------------------------------

build() {
  if [ "${DEMO_REUSE_BUILD:-}" = 1 ]; then
    step "reusing the binaries in $BIN_DIR (DEMO_REUSE_BUILD=1)"
  else
    step "building the control-plane tools (cached) and akash-provider, akash-devnet (debug, cached)"
    "$DEPLOY_DIR/build-k8s.sh"
    # Debug: the first build is minutes shorter than --release and the tests share it.
    cargo build --locked -p operator -p devnet
  fi
  local b
  for b in "$BIN_DIR/akash-provider" "$BIN_DIR/akash-devnet" "$(tool_dir)/kubectl" "$(tool_dir)/helm"; do
    [ -x "$b" ] || die "$b is missing (run without DEMO_REUSE_BUILD to build it)"
  done
}

# The real node decides the mode: pods when it is in the cluster and Ready.
choose_mode() {
  local ready
  ready=$(kubectl get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)
  if [ "$ready" = True ]; then
    MODE=pods
    CHAIN_IP=$NODE_IP
    SDL=${DEMO_SDL:-$REPO_DIR/deploy/demo/hello.yaml}
    step "the real node $NODE_NAME is up: the chart runs as pods; building the provider's image"
    IMAGE=$("$DEPLOY_DIR/build-images.sh" --provider "$BIN_DIR/akash-provider" --provider-tag auto akash-provider | tail -n 1)
    [ -n "$IMAGE" ] || die "building the provider's image failed"
  else
    MODE=host
    log "no real node: the provider and the tenant controller run on this machine (kwok runs no containers)"
  fi
  save_state
}

control_plane() {
  if [ -n "$KUBECONFIG_FILE" ]; then
    step "using the control plane of $KUBECONFIG_FILE (DEMO_KUBECONFIG)"
  elif cluster_running; then
    step "reusing the running control plane"
    KUBECONFIG_FILE=$KUBECONFIG_PATH
  else
    step "starting the control plane (deploy/cluster-up.sh)"
    STARTED_CLUSTER=true
    save_state
    KUBECONFIG_FILE=$("$DEPLOY_DIR/cluster-up.sh" 9>&-)
  fi
  save_state
  cluster_reachable || die "the control plane of $KUBECONFIG_FILE does not answer"
}

check_ports() {
  local p
  for p in "$RPC_PORT" "$GRPC_PORT" "$GATEWAY_PORT" "$GATEWAY_GRPC_PORT" "$METRICS_PORT" "$TENANT_METRICS_PORT"; do
    port_busy "$p" && die "port $p on 127.0.0.1 is taken; choose others with the DEMO_*_PORT variables"
  done
  return 0
}

# The mnemonic of test account $1, from the devnet's start banner.
banner_mnemonic() {
  awk -v want="($1)" '$1 == want {found=1; next} found && $1 == "mnemonic:" {sub(/^ *mnemonic: */, ""); print; exit}' \
    "$DEMO_DIR/devnet.log"
}
banner_address() { awk -v want="($1)" '$1 == want {print $2; exit}' "$DEMO_DIR/devnet.log"; }
devnet_answers() { curl -sf --max-time 2 "http://$CHAIN_IP:$RPC_PORT/status" >/dev/null; }

start_devnet() {
  step "starting the devnet (blocks every $BLOCK_TIME, home $DEMO_DIR/devnet)"
  rm -rf "$DEMO_DIR/devnet"
  # With the real node, on the node's address: the chart's pods reach it there.
  NO_COLOR=1 spawn devnet "$BIN_DIR/akash-devnet" start --home "$DEMO_DIR/devnet" --chain-id "$CHAIN_ID" \
    --block-time "$BLOCK_TIME" --rpc-laddr "$CHAIN_IP:$RPC_PORT" --grpc-laddr "$CHAIN_IP:$GRPC_PORT"
  wait_until "devnet answering on $CHAIN_IP:$RPC_PORT" 60 devnet_answers
  # The keys go to files readable by us only; never onto a command line.
  (
    umask 077
    banner_mnemonic "$PROVIDER_ACCOUNT" >"$DEMO_DIR/provider.mnemonic"
    banner_mnemonic "$TENANT_ACCOUNT" >"$DEMO_DIR/tenant.mnemonic"
  )
  [ -s "$DEMO_DIR/provider.mnemonic" ] && [ -s "$DEMO_DIR/tenant.mnemonic" ] \
    || die "no test mnemonics in the devnet's banner ($DEMO_DIR/devnet.log)"
  TENANT_ADDRESS=$(banner_address "$TENANT_ACCOUNT")
  save_state
  log "provider: test account ($PROVIDER_ACCOUNT) $(banner_address "$PROVIDER_ACCOUNT"); tenant: ($TENANT_ACCOUNT) $TENANT_ADDRESS"
}

ensure_namespace() {
  kubectl get namespace "$1" >/dev/null 2>&1 || kubectl create namespace "$1" >&2
}

install_chart() {
  step "installing the CRDs and the chart (release $RELEASE, namespace $NAMESPACE)"
  "$(provider_bin)" crd | kubectl apply --server-side --force-conflicts -f - >&2
  ensure_namespace "$NAMESPACE"
  ensure_namespace "$TENANT_NAMESPACE"
  kubectl -n "$NAMESPACE" delete secret provider-key --ignore-not-found >&2
  kubectl -n "$NAMESPACE" create secret generic provider-key \
    --from-file=mnemonic="$DEMO_DIR/provider.mnemonic" >&2
  if [ "$MODE" = pods ]; then
    local repository=${IMAGE%:*} tag=${IMAGE##*:}
    cat >"$DEMO_DIR/values.yaml" <<VALUES
# Written by deploy/demo.sh: the provider and the tenant controller as pods on the real node.
image: {repository: "$repository", tag: "$tag"}
key: {existingSecret: provider-key}
chain: {id: $CHAIN_ID, rpcUrl: "http://$CHAIN_IP:$RPC_PORT", grpcUrl: "http://$CHAIN_IP:$GRPC_PORT", pollInterval: 200ms}
provider:
  name: $NAMESPACE
  hostUri: "https://$NODE_IP:$GATEWAY_NODE_PORT"
  attributes: [{key: host, value: akash}]
inventory: {nodeSelector: {type: real}}
workloads: {ingress: {namespace: traefik}}
gateway: {service: {type: NodePort, restNodePort: $GATEWAY_NODE_PORT}}
nodeSelector: {type: real}
tenant: {enabled: true, watchNamespace: $TENANT_NAMESPACE, blockInterval: $BLOCK_TIME, statusInterval: 2s}
VALUES
  else
    cat >"$DEMO_DIR/values.yaml" <<VALUES
# Written by deploy/demo.sh. Zero replicas: kwok runs no containers; the demo runs both on the host.
replicaCount: 0
key: {existingSecret: provider-key}
chain: {id: $CHAIN_ID, rpcUrl: "http://127.0.0.1:$RPC_PORT", grpcUrl: "http://127.0.0.1:$GRPC_PORT"}
provider:
  name: $NAMESPACE
  hostUri: "https://127.0.0.1:$GATEWAY_PORT"
tenant: {enabled: true, replicaCount: 0, watchNamespace: $TENANT_NAMESPACE}
VALUES
  fi
  helm upgrade --install "$RELEASE" "$REPO_DIR/helm/akash-provider" -n "$NAMESPACE" \
    -f "$DEMO_DIR/values.yaml" >"$DEMO_DIR/helm-notes.txt"
  log "installed (helm's notes: $DEMO_DIR/helm-notes.txt)"
}

# token_kubeconfig SERVICE-ACCOUNT FILE: a kubeconfig that authenticates with a token of the account.
token_kubeconfig() {
  local token server ca
  token=$(kubectl -n "$NAMESPACE" create token "$1" --duration 24h)
  server=$(kubectl config view --raw --minify -o jsonpath='{.clusters[0].cluster.server}')
  ca=$(kubectl config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
  (
    umask 077
    cat >"$2" <<KC
apiVersion: v1
kind: Config
clusters:
- name: demo
  cluster: {server: "$server", certificate-authority-data: "$ca"}
users:
- name: $1
  user: {token: "$token"}
contexts:
- name: demo
  context: {cluster: demo, user: $1, namespace: $NAMESPACE}
current-context: demo
KC
  )
}

provider_registered() {
  [ "$(kubectl get providers.akash.network "$NAMESPACE" -o jsonpath='{.status.registered}' 2>/dev/null)" = true ]
}

start_provider() {
  if [ "$MODE" = pods ]; then
    step "the provider runs as a pod of the chart ($IMAGE), gateway https://$NODE_IP:$GATEWAY_NODE_PORT"
    wait_until "provider pod ready" 180 deployment_ready "$RELEASE"
    wait_until "provider registered on chain" 90 provider_registered
    return
  fi
  step "running the provider out of cluster as ServiceAccount $RELEASE (gateway https://127.0.0.1:$GATEWAY_PORT)"
  token_kubeconfig "$RELEASE" "$DEMO_DIR/provider.kubeconfig"
  KUBECONFIG=$DEMO_DIR/provider.kubeconfig RUST_LOG=info,kube=warn,hyper=warn,tower=warn \
    spawn provider "$(provider_bin)" run --key-file "$DEMO_DIR/provider.mnemonic" \
    --chain-id "$CHAIN_ID" --rpc-url "http://127.0.0.1:$RPC_PORT" --grpc-url "http://127.0.0.1:$GRPC_PORT" \
    --namespace "$NAMESPACE" --provider-resource "$NAMESPACE" --identity demo-provider \
    --gateway-rest-addr "127.0.0.1:$GATEWAY_PORT" --gateway-grpc-addr "127.0.0.1:$GATEWAY_GRPC_PORT" \
    --metrics-addr "127.0.0.1:$METRICS_PORT" --poll-interval 200ms
  wait_until "provider registered on chain" 90 provider_registered
}

start_tenant() {
  if [ "$MODE" = pods ]; then
    step "the tenant controller runs as a pod of the chart (watching $TENANT_NAMESPACE)"
    wait_until "tenant controller pod ready" 180 deployment_ready "$RELEASE-tenant"
    return
  fi
  step "running the tenant controller out of cluster as ServiceAccount $RELEASE-tenant (watching $TENANT_NAMESPACE)"
  token_kubeconfig "$RELEASE-tenant" "$DEMO_DIR/tenant.kubeconfig"
  KUBECONFIG=$DEMO_DIR/tenant.kubeconfig RUST_LOG=info,kube=warn,hyper=warn,tower=warn \
    spawn tenant "$(provider_bin)" tenant \
    --chain-id "$CHAIN_ID" --rpc-url "http://127.0.0.1:$RPC_PORT" --grpc-url "http://127.0.0.1:$GRPC_PORT" \
    --watch-namespace "$TENANT_NAMESPACE" --metrics-addr "127.0.0.1:$TENANT_METRICS_PORT" \
    --block-interval "$BLOCK_TIME" --status-interval 2s --poll-interval 200ms
  wait_until "tenant controller ready" 60 \
    curl -sf --max-time 2 "http://127.0.0.1:$TENANT_METRICS_PORT/readyz" -o /dev/null
}

manifest_field() {
  kubectl -n "$TENANT_NAMESPACE" get manifests.akash.network "$MANIFEST_NAME" -o jsonpath="{$1}" 2>/dev/null
}

deploy_manifest() {
  step "deploying $(basename "$SDL") as Manifest $TENANT_NAMESPACE/$MANIFEST_NAME"
  kubectl -n "$TENANT_NAMESPACE" delete secret tenant-key --ignore-not-found >&2
  kubectl -n "$TENANT_NAMESPACE" create secret generic tenant-key \
    --from-file=mnemonic="$DEMO_DIR/tenant.mnemonic" >&2
  "$(provider_bin)" sdl to-cr "$SDL" --name "$MANIFEST_NAME" --namespace "$TENANT_NAMESPACE" \
    --key-secret tenant-key >"$DEMO_DIR/manifest.yaml"
  if [ -n "$DSEQ" ]; then
    awk -v dseq="$DSEQ" '{print} /^spec:$/ {print "  dseq: " dseq}' "$DEMO_DIR/manifest.yaml" >"$DEMO_DIR/manifest.yaml.tmp"
    mv "$DEMO_DIR/manifest.yaml.tmp" "$DEMO_DIR/manifest.yaml"
  fi
  kubectl apply -f "$DEMO_DIR/manifest.yaml" >&2
  local start=$SECONDS last="" now phase
  while :; do
    phase=$(manifest_field .status.phase)
    now="${phase:-(no status yet)} dseq=$(manifest_field .status.dseq) ready=$(manifest_field .status.ready)"
    if [ "$now" != "$last" ]; then log "Manifest $MANIFEST_NAME: $now ($((SECONDS - start))s)"; last=$now; fi
    if [ -z "$DSEQ" ] && [ -n "$(manifest_field .status.dseq)" ]; then
      DSEQ=$(manifest_field .status.dseq)
      save_state
    fi
    case $phase in
      Running) break ;;
      Invalid | Closed) die "the Manifest is $phase: $(manifest_field '.status.conditions')" ;;
    esac
    (( SECONDS - start < TIMEOUT )) || die "the Manifest is not Running after ${TIMEOUT}s: $(manifest_field '.status.conditions')"
    sleep 0.5
  done
}

show() {
  echo
  echo "== kubectl get leases.akash.network -A"
  kubectl get leases.akash.network -A
  echo
  echo "== kubectl get manifests.akash.network -n $TENANT_NAMESPACE"
  kubectl get manifests.akash.network -n "$TENANT_NAMESPACE" -o wide
  echo
  echo "== its leases and endpoints (.status.groups, .status.services)"
  kubectl -n "$TENANT_NAMESPACE" get manifests.akash.network "$MANIFEST_NAME" -o jsonpath='{range .status.groups[*]}group {.name}: provider {.provider} at {.price.amount}{.price.denom} per block{"\n"}{end}{range .status.services[*]}service {.name}: ready {.readyReplicas}/{.replicas}, endpoints {.uris} {.forwardedPorts}{"\n"}{end}'
}

# With the real node: the app's answer through the ingress controller, by its automatic host.
curl_app() {
  [ "$MODE" = pods ] || return 0
  local host
  host=$(kubectl -n "$TENANT_NAMESPACE" get manifests.akash.network "$MANIFEST_NAME" \
    -o jsonpath='{.status.services[0].uris[0]}' 2>/dev/null)
  [ -n "$host" ] || { log "no endpoint to call"; return 0; }
  echo
  echo "== curl -H 'Host: $host' http://$NODE_IP/   (the ingress controller on the node)"
  local body="" tries=0
  until body=$(curl -sf --max-time 5 -H "Host: $host" "http://$NODE_IP/") || (( ++tries >= 30 )); do sleep 1; done
  echo "$body"
}

hints() {
  cat <<MSG

The demo is running. $(if [ "$MODE" = pods ]; then echo "The provider and the tenant controller are pods in $NAMESPACE; the devnet listens on $CHAIN_IP (log $DEMO_DIR/devnet.log)."; else echo "Everything listens on 127.0.0.1; logs are in $DEMO_DIR/*.log."; fi)
  export KUBECONFIG=$KUBECONFIG_FILE PATH=$(tool_dir):\$PATH
  kubectl get providers.akash.network $NAMESPACE
  kubectl -n $TENANT_NAMESPACE get manifests.akash.network $MANIFEST_NAME -o yaml
  deploy/demo.sh status     # this summary again
  deploy/demo.sh down       # stop everything the demo started
MSG
}

# ---- commands -------------------------------------------------------------------------------------

# The lease namespaces of the demo's deployment (its owner and dseq), for kubectl's -l.
lease_selector() { echo "akash.network/lease.id.owner=$TENANT_ADDRESS,akash.network/lease.id.dseq=$DSEQ"; }
lease_namespaces_gone() {
  [ -z "$TENANT_ADDRESS" ] || [ -z "$DSEQ" ] || [ -z "$(kubectl get namespace -l "$(lease_selector)" -o name 2>/dev/null)" ]
}

# Stops everything of the demo recorded in $STATE, in the reverse order of the start. Tolerant:
# whatever is already gone is skipped.
teardown() {
  [ -f "$STATE" ] || [ -n "$(running_processes)" ] || { log "no demo to stop in $DEMO_DIR"; return 0; }
  load_settings
  # shellcheck disable=SC1090
  [ -f "$STATE" ] && . "$STATE"
  step "stopping the demo"
  local up=false
  cluster_reachable && up=true
  if $up && kubectl get namespace "$TENANT_NAMESPACE" >/dev/null 2>&1; then
    # Deleting the Manifest closes the deployment on chain; the provider then removes the workloads.
    if [ -n "$(running_processes)" ]; then
      kubectl -n "$TENANT_NAMESPACE" delete manifests.akash.network --all --wait=false >&2 || true
      manifests_gone() { [ -z "$(kubectl -n "$TENANT_NAMESPACE" get manifests.akash.network -o name 2>/dev/null)" ]; }
      wait_until "Manifests closed on chain" 60 manifests_gone || true
      wait_until "lease namespace removed by the provider" 30 lease_namespaces_gone || true
    fi
  fi
  stop tenant "akash-provider tenant"
  stop provider "akash-provider run"
  if $up; then
    # The controllers stop first (with the real node they are the chart's pods), then what they
    # could not finish is cleared: finalizers left, lease namespaces.
    helm uninstall "$RELEASE" -n "$NAMESPACE" --ignore-not-found --wait >&2 || true
    strip_finalizers "$TENANT_NAMESPACE" manifests.akash.network
    strip_finalizers "$NAMESPACE" leases.akash.network
    strip_finalizers "$NAMESPACE" bids.akash.network
    if [ -n "$TENANT_ADDRESS" ] && [ -n "$DSEQ" ]; then
      kubectl delete namespace --ignore-not-found --wait=false -l "$(lease_selector)" >&2 || true
    fi
    kubectl delete namespace "$TENANT_NAMESPACE" "$NAMESPACE" --ignore-not-found --timeout 90s >&2 || true
  elif [ -n "$KUBECONFIG_FILE" ]; then
    log "the control plane does not answer: nothing removed from it"
  fi
  stop devnet akash-devnet
  rm -rf "$DEMO_DIR/devnet" "$DEMO_DIR"/*.mnemonic "$DEMO_DIR"/*.kubeconfig
  if [ "$STARTED_CLUSTER" = true ]; then
    step "stopping the control plane the demo started (deploy/cluster-down.sh)"
    "$DEPLOY_DIR/cluster-down.sh" 9>&-
  fi
  rm -f "$STATE"
  step "demo stopped"
}

# Runs on every exit of `up`: a start that did not finish stops what it started.
on_exit() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$rc" -ne 0 ]; then
    log "the demo did not start (exit $rc); last lines of its logs:"
    tail -n 5 "$DEMO_DIR"/*.log >&2 2>/dev/null || true
    teardown || true
  fi
  exit "$rc"
}

cmd_up() {
  local started=$SECONDS
  if [ -f "$STATE" ]; then
    load_settings
    # shellcheck disable=SC1090
    . "$STATE"
  fi
  if [ -f "$STATE" ] || [ -n "$(running_processes)" ]; then
    local procs
    procs=$(running_processes)
    if [ "$procs" = "devnet provider tenant" ]; then
      load_settings
      # shellcheck disable=SC1090
      . "$STATE"
      log "the demo is already running (see below); deploy/demo.sh down stops it"
      show
      hints
      return 0
    fi
    log "an earlier demo is partly running (${procs:-no processes}); stopping it first"
    teardown
  fi
  load_settings
  trap on_exit EXIT
  trap 'log "interrupted: stopping what the demo started"; exit 130' INT TERM
  check_ports
  save_state
  build
  local built=$SECONDS
  control_plane
  choose_mode
  start_devnet
  install_chart
  start_provider
  start_tenant
  deploy_manifest
  step "ready: $((SECONDS - built))s after the builds ($((SECONDS - started))s in all)"
  trap - EXIT INT TERM
  show
  curl_app
  hints
}

cmd_status() {
  [ -f "$STATE" ] || die "no demo is running (state: $STATE)"
  load_settings
  # shellcheck disable=SC1090
  . "$STATE"
  log "running: $(running_processes)"
  show
  curl_app
}

mkdir -p "$DEMO_DIR" "$PIDS"
# One command at a time on a demo directory.
exec 9>"$DEMO_DIR/lock"
flock -n 9 || die "another deploy/demo.sh is working on $DEMO_DIR"
case ${1:-up} in
  up) cmd_up ;;
  down) teardown ;;
  status) cmd_status ;;
  *) die "usage: deploy/demo.sh [up|down|status]" ;;
esac
