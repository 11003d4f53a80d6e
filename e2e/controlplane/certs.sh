#!/usr/bin/env bash
# Creates the local control plane's PKI with openssl, once: a CA, serving certificates for etcd
# and the apiserver, client certificates per component, and the service-account key pair.
# Sourced by up.sh (uses its helpers); files already present are kept.

pki="$COMMONS_CLUSTER_DIR/pki"

# cert NAME SUBJECT [SANS] [EXT]: a key and a CA-signed certificate, unless both exist.
cert() {
  local name="$1" subject="$2" sans="${3:-}" usage="${4:-clientAuth}"
  [[ -f "$pki/$name.crt" && -f "$pki/$name.key" ]] && return 0
  local ext="$pki/$name.ext"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    [[ -n "$sans" ]] && echo "subjectAltName=$sans"
  } >"$ext"
  openssl req -new -newkey rsa:2048 -nodes -keyout "$pki/$name.key" -subj "$subject" -out "$pki/$name.csr"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$ext" -out "$pki/$name.crt"
  rm -f "$pki/$name.csr" "$ext"
}

make_pki() {
  mkdir -p "$pki"
  chmod 700 "$pki"
  if [[ ! -f "$pki/ca.crt" ]]; then
    openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "$pki/ca.key" -days 3650 -sha256 \
      -subj "/CN=commons-local-ca" -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" -out "$pki/ca.crt"
  fi
  cert etcd-server "/CN=etcd" "IP:127.0.0.1,DNS:localhost" "serverAuth,clientAuth"
  cert apiserver-etcd-client "/CN=kube-apiserver-etcd-client"
  cert apiserver "/CN=kube-apiserver" \
    "IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" \
    serverAuth
  cert admin "/O=system:masters/CN=commons-local-admin"
  cert kube-controller-manager "/CN=system:kube-controller-manager"
  cert kube-scheduler "/CN=system:kube-scheduler"
  # kwok plays every kubelet: it updates nodes, leases and pod status for all simulated nodes, so
  # it needs more than one node's identity; it runs as a cluster admin on this local cluster only.
  cert kwok "/O=system:masters/CN=kwok"
  if [[ ! -f "$pki/sa.key" ]]; then
    openssl genrsa -out "$pki/sa.key" 2048
    openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub"
  fi
}

# kubeconfig NAME CERT: a kubeconfig for the apiserver that authenticates with client cert CERT.
kubeconfig() {
  local file="$COMMONS_CLUSTER_DIR/$1.kubeconfig" name="$2"
  [[ "$1" == "admin" ]] && file="$COMMONS_CLUSTER_DIR/kubeconfig"
  cat >"$file" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: commons-local
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority: $pki/ca.crt
users:
- name: $name
  user:
    client-certificate: $pki/$name.crt
    client-key: $pki/$name.key
contexts:
- name: commons-local
  context:
    cluster: commons-local
    user: $name
current-context: commons-local
KUBECONFIG
  chmod 600 "$file"
}
