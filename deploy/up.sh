#!/usr/bin/env bash
# The local environment in one command: builds what it needs (cached), starts the control plane on
# 127.0.0.1 with kwok nodes, and shows them. Stop it with deploy/down.sh.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
kubeconfig=$("$DEPLOY_DIR/cluster-up.sh")
"$(tool_dir)/kubectl" --kubeconfig "$kubeconfig" get nodes \
  -L akash.network/capabilities.gpu.vendor.nvidia.model.a100
cat <<MSG

The control plane is up on https://127.0.0.1:$APISERVER_PORT.
  export KUBECONFIG=$kubeconfig
  export PATH=$(tool_dir):\$PATH      # kubectl, helm, kwok at the pinned versions
  kubectl get nodes
Stop it with: deploy/down.sh   (add --purge to delete its state too)
MSG
