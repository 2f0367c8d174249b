#!/usr/bin/env bash
# Builds the OCI images the real node runs, without Docker (no public registry is reachable here):
#   pause                   the pod sandbox (deploy/images/pause.c, static)
#   workload                busybox and deploy/images/workload/serve: the tenants' test workload
#   coredns, traefik, local-path-provisioner, metallb-controller, metallb-speaker
#                           the static binaries deploy/build-k8s.sh node builds
#   akash-provider          the provider itself, when --provider BINARY is given
# Each image is an OCI layout under $AKASH_CACHE/images/NAME, rebuilt only when its inputs change,
# then pushed to the local registry (deploy/node-up.sh starts it on $REGISTRY) as
# $REGISTRY/akash/NAME:TAG (the provider: $REGISTRY/akash-provider:TAG).
# Prints each pushed image's reference on stdout; progress goes to stderr.
# Usage: deploy/build-images.sh [--provider BINARY [--provider-tag TAG|auto]] [--no-push] [NAME...]
#   --provider-tag auto   a tag from the binary's SHA-256 (a rebuilt binary is a new image)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

provider_bin= provider_tag=dev push=1 names=()
while [ $# -gt 0 ]; do
  case $1 in
    --provider) provider_bin=$2; shift 2 ;;
    --provider-tag) provider_tag=$2; shift 2 ;;
    --no-push) push=; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) names+=("$1"); shift ;;
  esac
done
if [ ${#names[@]} -eq 0 ]; then
  names=(pause workload coredns traefik local-path-provisioner metallb-controller metallb-speaker)
  [ -n "$provider_bin" ] && names+=(akash-provider)
fi
if [ "$provider_tag" = auto ]; then
  [ -f "$provider_bin" ] || die "--provider-tag auto needs --provider BINARY"
  provider_tag=sha-$(sha256sum "$provider_bin" | cut -c1-12)
fi
for tool in umoci skopeo; do
  command -v "$tool" >/dev/null || die "$tool is missing (Debian package $tool)"
done

IMAGES=$AKASH_CACHE/images
mkdir -p "$IMAGES"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# The tag and the files an image is made of, one "path-in-image source" pair per line.
image_tag() {
  case $1 in
    pause) echo 1 ;;
    workload) echo 1 ;;
    coredns) echo "$COREDNS_VERSION" ;;
    traefik) echo "$TRAEFIK_VERSION" ;;
    local-path-provisioner) echo "$LOCAL_PATH_PROVISIONER_VERSION" ;;
    metallb-controller|metallb-speaker) echo "$METALLB_VERSION" ;;
    akash-provider) echo "$provider_tag" ;;
  esac
}
image_ref() {
  case $1 in
    akash-provider) echo "$REGISTRY/akash-provider:$(image_tag "$1")" ;;
    *) echo "$REGISTRY/akash/$1:$(image_tag "$1")" ;;
  esac
}

# The shared libraries a dynamic binary loads, as "path-in-image source" pairs.
libraries_of() {
  ldd "$1" | awk '/=> \// {print $3} /^\t\/lib/ {print $1}' | while read -r lib; do
    echo "$lib $(readlink -f "$lib")"
  done
}

# Files of each image: "path-in-image source" lines.
image_files() {
  local bin
  case $1 in
    pause)
      gcc -static -O2 -s -o "$WORK/pause" "$DEPLOY_DIR/images/pause.c"
      echo "/pause $WORK/pause" ;;
    workload)
      bin=$(command -v busybox) || die "busybox is missing (Debian package busybox-static)"
      file -L "$bin" | grep 'statically linked' >/dev/null || die "$bin is not static (install busybox-static)"
      echo "/bin/busybox $bin"
      echo "/bin/serve $DEPLOY_DIR/images/workload/serve" ;;
    coredns|traefik|local-path-provisioner|metallb-controller|metallb-speaker)
      bin=$(tool_dir)/$1
      [ -x "$bin" ] || die "$bin is missing: run deploy/build-k8s.sh node"
      echo "/usr/bin/$1 $(readlink -f "$bin")" ;;
    akash-provider)
      [ -x "$provider_bin" ] || die "--provider $provider_bin is not an executable"
      echo "/usr/bin/akash-provider $(readlink -f "$provider_bin")"
      libraries_of "$provider_bin"
      echo "/etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt" ;;
  esac
}

# umoci config arguments of each image.
image_config() {
  case $1 in
    pause) echo --config.entrypoint=/pause ;;
    workload) echo --config.entrypoint=/bin/serve --config.env=PATH=/bin ;;
    coredns) echo --config.entrypoint=/usr/bin/coredns ;;
    traefik) echo --config.entrypoint=/usr/bin/traefik ;;
    local-path-provisioner) echo --config.entrypoint=/usr/bin/local-path-provisioner ;;
    metallb-controller|metallb-speaker) echo "--config.entrypoint=/usr/bin/$1" ;;
    akash-provider) echo --config.entrypoint=/usr/bin/akash-provider --config.user=65532:65532 ;;
  esac
}

build_image() {
  local name=$1 tag layout files inputs
  tag=$(image_tag "$name")
  layout=$IMAGES/$name
  files=$WORK/$name.files
  image_files "$name" >"$files"
  # Inputs: the file list with each file's hash, and the config.
  inputs=$( { while read -r dest src; do echo "$dest $(sha256sum "$src" | cut -d' ' -f1)"; done <"$files"
              image_config "$name"; echo "$tag"; } | sha256sum | cut -d' ' -f1)
  if [ -d "$layout" ] && [ "$(cat "$layout.inputs" 2>/dev/null)" = "$inputs" ]; then
    log "image $name:$tag: cached"
    return
  fi
  log "building image $name:$tag"
  local new=$WORK/$name-layout bundle=$WORK/$name-bundle
  umoci init --layout "$new"
  umoci new --image "$new:$tag"
  umoci unpack --image "$new:$tag" "$bundle" >/dev/null
  local rootfs=$bundle/rootfs
  while read -r dest src; do
    mkdir -p "$rootfs$(dirname "$dest")"
    cp -L "$src" "$rootfs$dest"
  done <"$files"
  if [ "$name" = workload ]; then
    # busybox's applets (sh, httpd, nc, wget, ...) as links.
    "$rootfs/bin/busybox" --list | while read -r applet; do
      [ -e "$rootfs/bin/$applet" ] || ln -s busybox "$rootfs/bin/$applet"
    done
    mkdir -p "$rootfs/tmp" && chmod 1777 "$rootfs/tmp"
  fi
  mkdir -p "$rootfs/etc" "$rootfs/tmp"
  chmod 1777 "$rootfs/tmp"
  printf 'root:x:0:0:root:/:/bin/sh\nnonroot:x:65532:65532:nonroot:/:/sbin/nologin\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
  umoci repack --image "$new:$tag" "$bundle"
  # shellcheck disable=SC2046
  umoci config --image "$new:$tag" --author akash-provider/deploy $(image_config "$name")
  umoci gc --layout "$new"
  rm -rf "$layout"
  mv "$new" "$layout"
  echo "$inputs" >"$layout.inputs"
}

push_image() {
  local name=$1 ref
  ref=$(image_ref "$name")
  skopeo copy --quiet --dest-tls-verify=false "oci:$IMAGES/$name:$(image_tag "$name")" "docker://$ref" \
    || die "pushing $ref failed (is the registry running? deploy/node-up.sh starts it)"
  log "pushed $ref"
  echo "$ref"
}

for name in "${names[@]}"; do
  case $name in
    pause|workload|coredns|traefik|local-path-provisioner|metallb-controller|metallb-speaker|akash-provider) ;;
    *) die "unknown image '$name'" ;;
  esac
  build_image "$name"
  [ -n "$push" ] && push_image "$name"
done
exit 0
