#!/usr/bin/env bash
# The local environment in one command: builds what it needs (cached), starts the control plane on
# 127.0.0.1 with kwok nodes, installs the akash.network CRDs, and shows what is there.
# Stop it with deploy/down.sh.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$REPO_DIR"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$AKASH_CACHE/target}

kubeconfig=$("$DEPLOY_DIR/cluster-up.sh")
kubectl() { "$(tool_dir)/kubectl" --kubeconfig "$kubeconfig" "$@"; }

log "building akash-provider"
cargo build --quiet --locked -p operator --bin akash-provider
provider=$CARGO_TARGET_DIR/debug/akash-provider
log "installing the akash.network CRDs"
"$provider" crd | kubectl apply --server-side --force-conflicts -f - >&2

kubectl get nodes -L akash.network/capabilities.gpu.vendor.nvidia.model.a100
echo
kubectl get crd -l '!nonexistent' -o custom-columns=CRD:.metadata.name,SHORT:.spec.names.shortNames \
  | grep -E '^CRD|akash.network'
cat <<MSG

The control plane is up on https://127.0.0.1:$APISERVER_PORT with the akash.network CRDs.
  export KUBECONFIG=$kubeconfig
  export PATH=$(tool_dir):\$PATH      # kubectl, helm, kwok at the pinned versions
  kubectl get nodes
  $provider sdl to-cr testdata/sdl/awesome-akash/AI-Image-App.yaml | kubectl apply -f -
  kubectl get manifests.akash.network
Stop it with: deploy/down.sh   (add --purge to delete its state too)
MSG
