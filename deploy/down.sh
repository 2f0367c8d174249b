#!/usr/bin/env bash
# Stops everything deploy/up.sh started. --purge also deletes the state (etcd data, certificates).
set -euo pipefail
exec "$(dirname "$0")/cluster-down.sh" "$@"
