#!/usr/bin/env bash
# Brings the local control plane up on loopback: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler and kwok (three simulated nodes), with TLS and RBAC. Builds what is missing first.
# Safe to run again: what is healthy is left alone, what is down is started.
set -euo pipefail
# shellcheck source=e2e/controlplane/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
# shellcheck source=e2e/controlplane/certs.sh
source "$controlplane_dir/certs.sh"

for tool in openssl curl sha256sum setsid; do
  command -v "$tool" >/dev/null || fail "finding $tool (install it with apt-get)"
done

"$controlplane_dir/build.sh"
export PATH="$controlplane_path:$PATH"

state="$COMMONS_CLUSTER_DIR"
logs="$state/logs"
pids="$state/pids"
mkdir -p "$logs" "$pids" "$state/etcd"
chmod 700 "$state/etcd"

step "certificates and kubeconfigs in $state"
make_pki >"$logs/pki.log" 2>&1 || fail "creating certificates" "$logs/pki.log"
kubeconfig admin admin
kubeconfig kube-controller-manager kube-controller-manager
kubeconfig kube-scheduler kube-scheduler
kubeconfig kwok kwok
export KUBECONFIG="$state/kubeconfig"

# running NAME: its pid file names a live process of that program.
running() {
  local pid
  [[ -f "$pids/$1.pid" ]] || return 1
  pid="$(cat "$pids/$1.pid")"
  kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "/$1 "
}

# start NAME HEALTH-COMMAND -- BINARY ARGS...: starts NAME detached unless it is running and healthy,
# then waits until HEALTH-COMMAND succeeds.
start() {
  local name="$1" health="$2"
  shift 3
  if running "$name" && eval "$health" >/dev/null 2>&1; then
    ok "$name is already running (pid $(cat "$pids/$name.pid"))"
    return 0
  fi
  if running "$name"; then
    # Running but unhealthy: give it a moment (it may be starting) before replacing it.
    if wait_until 20 "$name health" eval "$health"; then ok "$name is running"; return 0; fi
    kill "$(cat "$pids/$name.pid")" 2>/dev/null || true
    sleep 1
  fi
  step "starting $name"
  setsid nohup "$@" >>"$logs/$name.log" 2>&1 </dev/null &
  echo $! >"$pids/$name.pid"
  if ! wait_until 90 "$name health" eval "$health"; then
    running "$name" || fail "starting $name (it exited)" "$logs/$name.log"
    fail "waiting for $name to become healthy" "$logs/$name.log"
  fi
  ok "$name is healthy (pid $(cat "$pids/$name.pid"), log $logs/$name.log)"
}

tls_client=(--cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key")

start etcd "curl -fsS --cacert '$pki/ca.crt' --cert '$pki/apiserver-etcd-client.crt' --key '$pki/apiserver-etcd-client.key' https://127.0.0.1:$ETCD_CLIENT_PORT/health | grep -q true" -- \
  "$etcd_bin_dir/etcd" --name commons-local --data-dir "$state/etcd" \
  --listen-client-urls "https://127.0.0.1:$ETCD_CLIENT_PORT" --advertise-client-urls "https://127.0.0.1:$ETCD_CLIENT_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "commons-local=http://127.0.0.1:$ETCD_PEER_PORT" \
  --cert-file "$pki/etcd-server.crt" --key-file "$pki/etcd-server.key" \
  --trusted-ca-file "$pki/ca.crt" --client-cert-auth \
  --listen-metrics-urls "http://127.0.0.1:$((ETCD_CLIENT_PORT + 2))" \
  --quota-backend-bytes 4294967296 --snapshot-count 10000

start kube-apiserver "curl -fsS ${tls_client[*]} https://127.0.0.1:$APISERVER_PORT/readyz" -- \
  "$k8s_bin_dir/kube-apiserver" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
  --etcd-servers "https://127.0.0.1:$ETCD_CLIENT_PORT" --etcd-cafile "$pki/ca.crt" \
  --etcd-certfile "$pki/apiserver-etcd-client.crt" --etcd-keyfile "$pki/apiserver-etcd-client.key" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" --authorization-mode Node,RBAC \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --service-cluster-ip-range 10.96.0.0/16 --allow-privileged=true \
  --enable-admission-plugins NodeRestriction

start kube-controller-manager "curl -fsSk https://127.0.0.1:$KCM_PORT/healthz" -- \
  "$k8s_bin_dir/kube-controller-manager" \
  --kubeconfig "$state/kube-controller-manager.kubeconfig" \
  --authentication-kubeconfig "$state/kube-controller-manager.kubeconfig" \
  --authorization-kubeconfig "$state/kube-controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --leader-elect=false \
  --use-service-account-credentials --root-ca-file "$pki/ca.crt" \
  --service-account-private-key-file "$pki/sa.key" \
  --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
  --service-cluster-ip-range 10.96.0.0/16 --controllers '*'

start kube-scheduler "curl -fsSk https://127.0.0.1:$SCHEDULER_PORT/healthz" -- \
  "$k8s_bin_dir/kube-scheduler" \
  --kubeconfig "$state/kube-scheduler.kubeconfig" \
  --authentication-kubeconfig "$state/kube-scheduler.kubeconfig" \
  --authorization-kubeconfig "$state/kube-scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" --leader-elect=false

start kwok "curl -fsS http://127.0.0.1:$KWOK_PORT/healthz" -- \
  "$kwok_bin_dir/kwok" --kubeconfig "$state/kwok.kubeconfig" --config "$kwok_bin_dir/stages.yaml" \
  --manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
  --node-lease-duration-seconds 40 --cidr 10.0.0.0/16 --node-ip 127.0.0.1 \
  --server-address "127.0.0.1:$KWOK_PORT"

step "three simulated nodes"
nodes=""
for i in 0 1 2; do
  nodes+="
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: \"0\"
  labels:
    type: kwok
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    topology.kubernetes.io/zone: zone-$i
status:
  allocatable: {cpu: \"32\", memory: 256Gi, pods: \"110\", ephemeral-storage: 1Ti}
  capacity: {cpu: \"32\", memory: 256Gi, pods: \"110\", ephemeral-storage: 1Ti}
  nodeInfo: {kubeletVersion: \"$KUBERNETES_VERSION\", operatingSystem: linux, architecture: amd64}"
done
echo "$nodes" | kubectl apply --server-side --field-manager=commons-local -f - >"$logs/nodes.log" 2>&1 \
  || fail "creating the kwok nodes" "$logs/nodes.log"
kubectl wait --for=condition=Ready node -l type=kwok --timeout=120s >>"$logs/nodes.log" 2>&1 \
  || fail "waiting for the kwok nodes to be Ready" "$logs/nodes.log"

ok "control plane $KUBERNETES_VERSION is up at https://127.0.0.1:$APISERVER_PORT"
kubectl get nodes -o wide | sed 's/^/   /'
cat <<TXT
   export KUBECONFIG=$KUBECONFIG
   export PATH=$controlplane_path:\$PATH
   (or: source e2e/controlplane/env.sh)
TXT
