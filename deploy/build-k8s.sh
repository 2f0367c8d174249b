#!/usr/bin/env bash
# Builds the local control plane from Go modules and caches each binary by version:
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl (k8s.io/kubernetes),
#   etcd (go.etcd.io/etcd/server/v3), kwok (sigs.k8s.io/kwok), helm (helm.sh/helm/v3).
# A binary already in the cache is not rebuilt. Prints one line per binary with its build time.
# With `node`, the real node's binaries instead: kubelet, kube-proxy (k8s.io/kubernetes), containerd,
# containerd-shim-runc-v2, ctr, coredns, traefik, kube-router, local-path-provisioner, and MetalLB's
# metallb-controller and metallb-speaker (go.universe.tf/metallb); `all` builds both.
# Usage: deploy/build-k8s.sh [NAME...|node|all]   (default: the control plane)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

command -v go >/dev/null || die "go is not installed (needed to build the control plane)"
mkdir -p "$K8S_BIN_CACHE" "$(tool_dir)"
# One build at a time: a second caller waits, then finds the binaries cached.
exec 8>"$K8S_BIN_CACHE/.build.lock"
flock 8
export GOFLAGS="-trimpath -mod=mod"
export GOTOOLCHAIN=local
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

k8s_minor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)
# Staging modules (k8s.io/api, ...) are published as v0.<minor>.<patch>.
staging_version="v0.${KUBERNETES_VERSION#v1.}"

# A module whose go.mod replaces k8s.io/kubernetes's v0.0.0 staging requirements with their
# published versions; without it `go build k8s.io/kubernetes/...` cannot resolve them.
k8s_wrapper() {
  local dir=$WORK/k8s
  [ -f "$dir/go.mod" ] && { echo "$dir"; return; }
  mkdir -p "$dir"
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [ -f "$gomod" ] || die "the Go module proxy did not serve k8s.io/kubernetes@$KUBERNETES_VERSION"
  {
    echo "module akash-provider.local/k8s-build"
    echo
    awk '$1=="go" {print; exit}' "$gomod"
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    # Lines like:  k8s.io/api => ./staging/src/k8s.io/api
    awk '/=> \.\/staging\/src\// {print "replace " $1 " => " $1 " '"$staging_version"'"}' "$gomod"
  } >"$dir/go.mod"
  echo "$dir"
}

k8s_ldflags() {
  local pkg
  local flags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$flags"
}

# build NAME VERSION MODULE-DIR PACKAGE [LDFLAGS]
build() {
  local name=$1 version=$2 dir=$3 pkg=$4 ldflags=${5:--s -w}
  local out
  out=$(cached_bin "$name" "$version")
  if [ ! -x "$out" ]; then
    log "building $name $version from $pkg (first build takes minutes)"
    local start=$SECONDS
    (cd "$dir" && go build -ldflags "$ldflags" -o "$out.tmp" "$pkg") || die "building $name $version failed"
    mv "$out.tmp" "$out"
    log "built $name $version in $((SECONDS - start))s"
    echo "$name $version built in $((SECONDS - start))s" >>"$K8S_BIN_CACHE/build-times.log"
  else
    log "$name $version: cached"
  fi
  ln -sfn "$out" "$(tool_dir)/$name"
}

# A module that requires one tool module at a version (for tools whose go.mod has replace lines).
plain_wrapper() {
  local name=$1 module=$2 version=$3
  local dir=$WORK/$name
  mkdir -p "$dir"
  printf 'module akash-provider.local/%s-build\n\ngo 1.24\n\nrequire %s %s\n' "$name" "$module" "$version" >"$dir/go.mod"
  echo "$dir"
}

# A module that requires MODULE at VERSION and copies that module's own replace lines (which Go
# ignores in a dependency), for tools that build only with their forks (traefik).
replacing_wrapper() {
  local name=$1 module=$2 version=$3
  local dir gomod
  dir=$(plain_wrapper "$name" "$module" "$version")
  gomod=$(go mod download -json "$module@$version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [ -f "$gomod" ] || die "the Go module proxy did not serve $module@$version"
  awk '/^replace \(/ {inside=1; next} inside && /^\)/ {inside=0; next}
       inside && /=>/ {print "replace " $0; next}
       /^replace .*=>/ {print}' "$gomod" >>"$dir/go.mod"
  echo "$dir"
}

# Tools that go into images with nothing beside them are static (CGO_ENABLED=0); containerd too
# (its optional cgo parts need headers this machine lacks).
static_build() { CGO_ENABLED=0 build "$@"; }

CONTROL_PLANE=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok helm)
NODE=(kubelet kube-proxy containerd containerd-shim-runc-v2 ctr coredns traefik kube-router local-path-provisioner
  metallb-controller metallb-speaker)
wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=("${CONTROL_PLANE[@]}")
[ "${wanted[*]}" = node ] && wanted=("${NODE[@]}")
[ "${wanted[*]}" = all ] && wanted=("${CONTROL_PLANE[@]}" "${NODE[@]}")
for name in "${wanted[@]}"; do
  case $name in
    kubelet|kube-proxy)
      out=$(cached_bin "$name" "$KUBERNETES_VERSION")
      if [ -x "$out" ]; then build "$name" "$KUBERNETES_VERSION" /nonexistent x; continue; fi
      # Host processes, built like the control plane so that they reuse its compiled packages.
      build "$name" "$KUBERNETES_VERSION" "$(k8s_wrapper)" "k8s.io/kubernetes/cmd/$name" "$(k8s_ldflags)" ;;
    containerd|containerd-shim-runc-v2|ctr)
      if [ -x "$(cached_bin "$name" "$CONTAINERD_VERSION")" ]; then build "$name" "$CONTAINERD_VERSION" /nonexistent x; continue; fi
      static_build "$name" "$CONTAINERD_VERSION" \
        "$(plain_wrapper containerd github.com/containerd/containerd/v2 "$CONTAINERD_VERSION")" \
        "github.com/containerd/containerd/v2/cmd/$name" \
        "-s -w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION" ;;
    coredns)
      if [ -x "$(cached_bin coredns "$COREDNS_VERSION")" ]; then build coredns "$COREDNS_VERSION" /nonexistent x; continue; fi
      static_build coredns "$COREDNS_VERSION" \
        "$(plain_wrapper coredns github.com/coredns/coredns "$COREDNS_VERSION")" github.com/coredns/coredns ;;
    traefik)
      if [ -x "$(cached_bin traefik "$TRAEFIK_VERSION")" ]; then build traefik "$TRAEFIK_VERSION" /nonexistent x; continue; fi
      static_build traefik "$TRAEFIK_VERSION" \
        "$(replacing_wrapper traefik github.com/traefik/traefik/v3 "$TRAEFIK_VERSION")" \
        github.com/traefik/traefik/v3/cmd/traefik \
        "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION" ;;
    kube-router)
      if [ -x "$(cached_bin kube-router "$KUBE_ROUTER_VERSION")" ]; then build kube-router "$KUBE_ROUTER_VERSION" /nonexistent x; continue; fi
      dir=$WORK/kube-router
      mkdir -p "$dir"
      # The fork's go.mod names the upstream module: require that name, replace it with the fork.
      printf 'module akash-provider.local/kube-router-build\n\ngo 1.24\n\nrequire github.com/cloudnativelabs/kube-router/v2 v2.6.3\n\nreplace github.com/cloudnativelabs/kube-router/v2 => github.com/k3s-io/kube-router/v2 %s\n' \
        "$KUBE_ROUTER_VERSION" >"$dir/go.mod"
      static_build kube-router "$KUBE_ROUTER_VERSION" "$dir" github.com/cloudnativelabs/kube-router/v2/cmd/kube-router ;;
    local-path-provisioner)
      v=$LOCAL_PATH_PROVISIONER_VERSION
      if [ -x "$(cached_bin local-path-provisioner "$v")" ]; then build local-path-provisioner "$v" /nonexistent x; continue; fi
      static_build local-path-provisioner "$v" \
        "$(plain_wrapper local-path-provisioner github.com/rancher/local-path-provisioner "$v")" \
        github.com/rancher/local-path-provisioner ;;
    metallb-controller|metallb-speaker)
      # The module's ./controller and ./speaker (native L2; FRR is a separate daemon, not built).
      if [ -x "$(cached_bin "$name" "$METALLB_VERSION")" ]; then
        build "$name" "$METALLB_VERSION" /nonexistent x
      else
        static_build "$name" "$METALLB_VERSION" \
          "$(plain_wrapper metallb go.universe.tf/metallb "$METALLB_VERSION")" \
          "go.universe.tf/metallb/${name#metallb-}"
      fi
      # Its CRDs as the module ships them (config/crd/bases: no conversion webhook, which the
      # node's MetalLB does not run), for deploy/node-up.sh.
      crds=$(cached_bin metallb-crds "$METALLB_VERSION").yaml
      if [ ! -s "$crds" ]; then
        src=$(go mod download -json "go.universe.tf/metallb@$METALLB_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
        [ -d "$src/config/crd/bases" ] || die "go.universe.tf/metallb@$METALLB_VERSION has no config/crd/bases"
        for f in "$src"/config/crd/bases/*.yaml; do echo "---"; cat "$f"; done >"$crds.tmp"
        mv "$crds.tmp" "$crds"
      fi ;;
    kube-apiserver|kube-controller-manager|kube-scheduler|kubectl)
      out=$(cached_bin "$name" "$KUBERNETES_VERSION")
      if [ -x "$out" ]; then build "$name" "$KUBERNETES_VERSION" /nonexistent x; continue; fi
      build "$name" "$KUBERNETES_VERSION" "$(k8s_wrapper)" "k8s.io/kubernetes/cmd/$name" "$(k8s_ldflags)" ;;
    etcd)
      v=$(etcd_version)
      [ -x "$(cached_bin etcd "$v")" ] && { build etcd "$v" /nonexistent x; continue; }
      build etcd "$v" "$(plain_wrapper etcd go.etcd.io/etcd/server/v3 "$v")" go.etcd.io/etcd/server/v3 \
        "-s -w" ;;
    kwok)
      if [ ! -x "$(cached_bin kwok "$KWOK_VERSION")" ]; then
        build kwok "$KWOK_VERSION" "$(plain_wrapper kwok sigs.k8s.io/kwok "$KWOK_VERSION")" sigs.k8s.io/kwok/cmd/kwok
      else
        build kwok "$KWOK_VERSION" /nonexistent x
      fi
      # kwok simulates nothing without stages; its module ships the standard ones as YAML.
      stages=$(cached_bin kwok-stages "$KWOK_VERSION").yaml
      if [ ! -s "$stages" ]; then
        src=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
        [ -d "$src/kustomize/stage" ] || die "sigs.k8s.io/kwok@$KWOK_VERSION has no kustomize/stage"
        for f in "$src"/kustomize/stage/node/fast/node-*.yaml \
                 "$src"/kustomize/stage/node/heartbeat-with-lease/node-*.yaml \
                 "$src"/kustomize/stage/pod/fast/pod-*.yaml; do
          echo "---"; cat "$f"
        done >"$stages.tmp"
        mv "$stages.tmp" "$stages"
      fi ;;
    helm)
      [ -x "$(cached_bin helm "$HELM_VERSION")" ] && { build helm "$HELM_VERSION" /nonexistent x; continue; }
      build helm "$HELM_VERSION" "$(plain_wrapper helm helm.sh/helm/v3 "$HELM_VERSION")" helm.sh/helm/v3/cmd/helm \
        "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" ;;
    *) die "unknown binary '$name' (known: ${CONTROL_PLANE[*]} ${NODE[*]}; or node, all)" ;;
  esac
done
log "binaries are in $(tool_dir)"
