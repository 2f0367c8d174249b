#!/usr/bin/env bash
# Builds wireguard-go (userspace WireGuard, golang.zx2c4.com/wireguard) at the pinned version and
# caches it; prints its path. The overlay's WireGuard mode uses it where kernel WireGuard is not
# available (set WG_USERSPACE_IMPLEMENTATION to this path).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

bin="$(tool_dir)/wireguard-go-$WIREGUARD_GO_VERSION"
if [ ! -x "$bin" ]; then
  command -v go >/dev/null || die "go is not installed (needed to build wireguard-go)"
  mkdir -p "$(tool_dir)"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  start=$(date +%s)
  GOFLAGS="-trimpath -mod=mod" GOTOOLCHAIN=local GOBIN="$work" \
    go install "golang.zx2c4.com/wireguard@$WIREGUARD_GO_VERSION" >&2
  mv "$work/wireguard" "$bin"
  echo "built wireguard-go $WIREGUARD_GO_VERSION in $(( $(date +%s) - start ))s" >&2
fi
echo "$bin"
