#!/usr/bin/env bash
# Runs every test: formatting, clippy, unit tests, and the e2e tests against the local control plane.
# Starts the control plane if none is running (and stops it again at the end); reuses a running one.
# Set AKASH_E2E_KUBECONFIG to test against another control plane instead.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$REPO_DIR"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$AKASH_CACHE/target}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# No incremental caches: each fresh clone (a new path) would add its own, which grew the shared
# target directory by 40 GB on this machine; a suite run compiles each crate once anyway.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

step() { log "== $*"; }

step "build the control-plane binaries (cached under $K8S_BIN_CACHE)"
"$DEPLOY_DIR/build-k8s.sh"

step "the official Akash TypeScript SDK (sdk-ref/, a test reference)"
command -v node >/dev/null || die "Node.js is required: tests compare against the official Akash SDK"
# Installed again only when package-lock.json changed since the last install.
lock_hash=$(sha256sum sdk-ref/package-lock.json | cut -d' ' -f1)
if [ "$(cat sdk-ref/node_modules/.installed-lock-hash 2>/dev/null)" != "$lock_hash" ]; then
  (cd sdk-ref && npm ci --no-audit --no-fund --loglevel=error)
  echo "$lock_hash" >sdk-ref/node_modules/.installed-lock-hash
fi

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build the tests"
cargo test --workspace --locked --no-run

if [ -z "${AKASH_E2E_KUBECONFIG:-}" ]; then
  if cluster_running; then
    step "reusing the running control plane"
  else
    step "start the control plane"
    trap '"$DEPLOY_DIR/cluster-down.sh"' EXIT
  fi
  AKASH_E2E_KUBECONFIG=$("$DEPLOY_DIR/cluster-up.sh")
  export AKASH_E2E_KUBECONFIG
fi

step "cargo test (unit and e2e)"
# The providers' and tenant controllers' logs go to each test's captured output, which cargo
# prints for a failing test only.
# Whole logs also go to .local/test-logs/<test>/ (kept with a failed CI run's clone).
export AKASH_E2E_LOG_DIR=${AKASH_E2E_LOG_DIR:-$REPO_DIR/.local/test-logs}
rm -rf "$AKASH_E2E_LOG_DIR"
AKASH_E2E_LOGS=${AKASH_E2E_LOGS:-1} cargo test --workspace --locked --no-fail-fast
