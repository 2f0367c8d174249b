#!/usr/bin/env bash
# Writes the local control plane's keys and certificates into DIR (a CA, the API server's serving
# certificate for 127.0.0.1, client certificates for admin, controller-manager and scheduler, and the
# service-account signing key). Existing files are kept.
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

if [ ! -f apiserver.crt ]; then
  ossl genrsa -out apiserver.key 2048
  ossl req -new -key apiserver.key -subj "/CN=kube-apiserver" -out apiserver.csr
  cat >apiserver.ext <<EXT
extendedKeyUsage=serverAuth
keyUsage=critical,digitalSignature,keyEncipherment
subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EXT
  ossl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -sha256 \
    -extfile apiserver.ext -out apiserver.crt
  rm -f apiserver.csr apiserver.ext
fi

client admin kubernetes-admin system:masters
client controller-manager system:kube-controller-manager
client scheduler system:kube-scheduler
client kwok system:kwok-controller system:masters

if [ ! -f sa.key ]; then
  ossl genrsa -out sa.key 2048
  ossl rsa -in sa.key -pubout -out sa.pub
fi
