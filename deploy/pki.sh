#!/usr/bin/env bash
# Writes the local control plane's keys and certificates into DIR (a CA, the API server's serving
# certificate for 127.0.0.1, client certificates for admin, controller-manager and scheduler, and the
# service-account signing key); with NODE_NAME and NODE_IP set, also the real node's (kubelet,
# kube-proxy, kube-router, the API server's kubelet client). Existing files are kept, except a
# serving certificate whose names changed.
# Usage: deploy/pki.sh DIR
set -euo pipefail
dir=${1:?usage: deploy/pki.sh DIR}
mkdir -p "$dir"
cd "$dir"
umask 077

ossl() { openssl "$@" 2>/dev/null; }

if [ ! -f ca.crt ]; then
  ossl genrsa -out ca.key 2048
  ossl req -x509 -new -nodes -key ca.key -sha256 -days 3650 -subj "/CN=akash-local-ca" -out ca.crt
fi

# client NAME CN [O]
client() {
  local name=$1 cn=$2 org=${3:-}
  [ -f "$name.crt" ] && return
  local subj="/CN=$cn"
  [ -n "$org" ] && subj="/O=$org/CN=$cn"
  ossl genrsa -out "$name.key" 2048
  ossl req -new -key "$name.key" -subj "$subj" -out "$name.csr"
  printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' >"$name.ext"
  ossl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -sha256 \
    -extfile "$name.ext" -out "$name.crt"
  rm -f "$name.csr" "$name.ext"
}

# server NAME CN SUBJECT-ALT-NAMES: a serving certificate; made again when its names changed.
server() {
  local name=$1 cn=$2 sans=$3
  if [ -f "$name.crt" ] && [ "$(cat "$name.sans" 2>/dev/null)" = "$sans" ]; then return; fi
  ossl genrsa -out "$name.key" 2048
  ossl req -new -key "$name.key" -subj "/CN=$cn" -out "$name.csr"
  printf 'extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\nsubjectAltName=%s\n' \
    "$sans" >"$name.ext"
  ossl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -sha256 \
    -extfile "$name.ext" -out "$name.crt"
  rm -f "$name.csr" "$name.ext"
  echo "$sans" >"$name.sans"
}

# With a real node (NODE_IP set), pods reach the API server at the node's address.
apiserver_sans="IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
[ -n "${NODE_IP:-}" ] && apiserver_sans+=",IP:$NODE_IP"
server apiserver kube-apiserver "$apiserver_sans"

client admin kubernetes-admin system:masters
client controller-manager system:kube-controller-manager
client scheduler system:kube-scheduler
client kwok system:kwok-controller system:masters

# The real node's parts: the kubelet (client and serving), the API server's client for the kubelet
# (logs, exec), kube-proxy and kube-router.
if [ -n "${NODE_NAME:-}" ] && [ -n "${NODE_IP:-}" ]; then
  client "kubelet-$NODE_NAME" "system:node:$NODE_NAME" system:nodes
  server "kubelet-serving-$NODE_NAME" "system:node:$NODE_NAME" "IP:$NODE_IP,DNS:$NODE_NAME"
  client apiserver-kubelet-client kube-apiserver-kubelet-client
  client kube-proxy system:kube-proxy
  client kube-router system:kube-router
fi

if [ ! -f sa.key ]; then
  ossl genrsa -out sa.key 2048
  ossl rsa -in sa.key -pubout -out sa.pub
fi
