#!/usr/bin/env bash
# The local control plane's PKI, made with openssl; sourced by up.sh after lib.sh.
#   ca              cluster CA: the apiserver's serving cert and every client cert of the API;
#                   also the controller manager's signer for CertificateSigningRequests
#   etcd-ca         etcd's own CA, so only the apiserver's etcd client cert can reach etcd
#   front-proxy-ca  request-header CA for aggregated APIs (as kubeadm sets it up)
#   webhook-client-ca  signs only the client certificate the apiserver presents to admission
#                   webhooks (admission.yaml), so a webhook that trusts it trusts the apiserver alone
#   sa.key/sa.pub   service-account token signing key pair
# Files are kept across runs; a certificate is remade when its definition changed, it no longer
# verifies against its CA (the CA was remade) or it expires within 30 days.
# shellcheck disable=SC2154 # cluster_* and APISERVER_PORT come from lib.sh

# new_ca NAME CN: a self-signed CA, unless it exists.
new_ca() {
  [[ -f "$cluster_pki/$1.crt" && -f "$cluster_pki/$1.key" ]] && return 0
  echo "creating CA $1"
  openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 3650 \
    -keyout "$cluster_pki/$1.key" -out "$cluster_pki/$1.crt" -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"
}

# cert NAME CA SUBJECT USAGE [SANS]: a key and a certificate signed by CA.
cert() {
  local name="$1" ca="$2" subject="$3" usage="$4" sans="${5:-}"
  local crt="$cluster_pki/$name.crt" key="$cluster_pki/$name.key" spec
  spec="$subject|$usage|$sans|$(sha256sum <"$cluster_pki/$ca.crt")"
  # Kept when unchanged and still valid against its CA 30 days from now.
  if [[ -f "$crt" && -f "$key" && "$(cat "$cluster_pki/$name.spec" 2>/dev/null)" == "$spec" ]] \
    && openssl verify -attime "$(($(date +%s) + 2592000))" -CAfile "$cluster_pki/$ca.crt" "$crt" >/dev/null 2>&1; then
    return 0
  fi
  echo "creating certificate $name ($subject)"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    if [[ -n "$sans" ]]; then echo "subjectAltName=$sans"; fi
  } >"$cluster_pki/$name.ext"
  openssl req -new -newkey rsa:2048 -nodes -keyout "$key" -subj "$subject" -out "$cluster_pki/$name.csr"
  openssl x509 -req -in "$cluster_pki/$name.csr" -CA "$cluster_pki/$ca.crt" -CAkey "$cluster_pki/$ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 825 -sha256 -extfile "$cluster_pki/$name.ext" -out "$crt"
  rm -f "$cluster_pki/$name.csr" "$cluster_pki/$name.ext"
  echo "$spec" >"$cluster_pki/$name.spec"
}

# make_pki: every CA, certificate and key the control plane needs.
make_pki() {
  mkdir -p "$cluster_pki"
  chmod 700 "$cluster_pki"
  local old_umask
  old_umask="$(umask)"
  umask 077
  new_ca ca commons-local-ca
  new_ca etcd-ca commons-local-etcd-ca
  new_ca front-proxy-ca commons-local-front-proxy-ca

  # etcd's gRPC gateway dials etcd itself with this certificate, so it is a client cert too.
  cert etcd-server etcd-ca "/CN=commons-local-etcd" serverAuth,clientAuth "IP:127.0.0.1,DNS:localhost"
  cert apiserver-etcd-client etcd-ca "/CN=kube-apiserver-etcd-client" clientAuth
  cert apiserver ca "/CN=kube-apiserver" serverAuth \
    "IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert front-proxy-client front-proxy-ca "/CN=front-proxy-client" clientAuth
  new_ca webhook-client-ca commons-local-webhook-client-ca
  cert apiserver-webhook-client webhook-client-ca "/CN=kube-apiserver-webhook-client" clientAuth
  # Clients of the API: the user is the CN, groups are the O entries.
  cert admin ca "/O=system:masters/CN=commons-local-admin" clientAuth
  cert kube-controller-manager ca "/CN=system:kube-controller-manager" clientAuth
  cert kube-scheduler ca "/CN=system:kube-scheduler" clientAuth
  # kwok acts as the kubelet of every simulated node, so a per-node identity (system:node:NAME)
  # does not fit; it gets its own user, bound by up.sh to kwok's upstream ClusterRole.
  cert kwok ca "/CN=kwok-controller" clientAuth

  if [[ ! -f "$cluster_pki/sa.key" || ! -f "$cluster_pki/sa.pub" ]]; then
    echo "creating the service-account key pair"
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$cluster_pki/sa.key"
    openssl pkey -in "$cluster_pki/sa.key" -pubout -out "$cluster_pki/sa.pub"
  fi
  umask "$old_umask"
}

# write_if_changed FILE: stdin to FILE (mode 600), leaving FILE untouched when equal.
write_if_changed() {
  local tmp="$1.tmp.$$"
  (umask 077 && cat >"$tmp")
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv -f "$tmp" "$1"; fi
}

# kubeconfig FILE CERT: a kubeconfig for the apiserver (context commons-local) that authenticates
# with client certificate CERT; certificates are embedded so the file can be copied or merged.
kubeconfig() {
  local b64=(base64 -w0)
  write_if_changed "$1" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: commons-local
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $("${b64[@]}" <"$cluster_pki/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $("${b64[@]}" <"$cluster_pki/$2.crt")
    client-key-data: $("${b64[@]}" <"$cluster_pki/$2.key")
contexts:
- name: commons-local
  context:
    cluster: commons-local
    user: $2
current-context: commons-local
KUBECONFIG
}

# make_kubeconfigs: the admin kubeconfig and one per component.
make_kubeconfigs() {
  kubeconfig "$cluster_kubeconfig" admin
  local c
  for c in kube-controller-manager kube-scheduler kwok; do
    kubeconfig "$COMMONS_CLUSTER_DIR/$c.kubeconfig" "$c"
  done
}

# make_admission_config: the apiserver's admission configuration. Admission webhooks are called
# with the client certificate apiserver-webhook-client, as a production cluster would, so a webhook
# can refuse every other client. The user entry `*` matches every webhook host; a cluster with
# webhooks of other parties names each host:port instead.
make_admission_config() {
  local b64=(base64 -w0) plugin
  write_if_changed "$COMMONS_CLUSTER_DIR/admission-webhooks.kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
users:
- name: '*'
  user:
    client-certificate-data: $("${b64[@]}" <"$cluster_pki/apiserver-webhook-client.crt")
    client-key-data: $("${b64[@]}" <"$cluster_pki/apiserver-webhook-client.key")
KUBECONFIG
  {
    echo "apiVersion: apiserver.config.k8s.io/v1"
    echo "kind: AdmissionConfiguration"
    echo "plugins:"
    for plugin in ValidatingAdmissionWebhook MutatingAdmissionWebhook; do
      cat <<YAML
- name: $plugin
  configuration:
    apiVersion: apiserver.config.k8s.io/v1
    kind: WebhookAdmissionConfiguration
    kubeConfigFile: $COMMONS_CLUSTER_DIR/admission-webhooks.kubeconfig
YAML
    done
  } | write_if_changed "$COMMONS_CLUSTER_DIR/admission.yaml"
}
