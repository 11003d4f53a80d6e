#!/usr/bin/env bash
# Brings the local control plane up on loopback: etcd (TLS, client-cert auth), kube-apiserver
# (TLS, Node+RBAC), kube-controller-manager, kube-scheduler and kwok with three simulated nodes.
# Builds what is missing first (build.sh). Idempotent: when everything is healthy it says so and
# exits; a process that is down, unhealthy or started with other flags or binaries is (re)started.
# Processes run detached and outlive this script; state, logs and pid files are in
# $COMMONS_CLUSTER_DIR (default ~/.cache/commons/cluster). Stop them with down.sh.
# Ports (environment): ETCD_CLIENT_PORT=12379 ETCD_PEER_PORT=12380 (etcd metrics: client + 2)
#   APISERVER_PORT=16443 KCM_PORT=16257 SCHEDULER_PORT=16259 KWOK_PORT=16247
set -euo pipefail
# shellcheck source=e2e/controlplane/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
# shellcheck source=e2e/controlplane/certs.sh
source "$controlplane_dir/certs.sh"

case "${1:-}" in
  "") ;;
  -h | --help) sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' && exit 0 ;;
  *) fail "unknown argument '$1' (see --help)" ;;
esac
report_errors
started=$SECONDS

for tool in openssl curl setsid base64 sha256sum cmp; do
  command -v "$tool" >/dev/null || fail "finding $tool (on Debian: apt-get install openssl curl util-linux coreutils diffutils)"
done

mkdir -p "$COMMONS_CLUSTER_DIR" "$cluster_logs" "$cluster_pids" "$COMMONS_CLUSTER_DIR/etcd"
chmod 700 "$COMMONS_CLUSTER_DIR/etcd"
# Marks the directory as ours: down.sh --purge deletes only a directory that has it.
echo "local control plane state; see e2e/controlplane/up.sh" >"$COMMONS_CLUSTER_DIR/.commons-cluster"

# One up.sh at a time per cluster; the lock's descriptor is closed for the started processes.
if command -v flock >/dev/null; then
  exec 8>"$COMMONS_CLUSTER_DIR/.up.lock"
  if ! flock -n 8; then
    step "waiting for another up.sh to finish"
    flock 8
  fi
fi

"$controlplane_dir/build.sh" || exit 1
export PATH="$controlplane_path:$PATH"
export KUBECONFIG="$cluster_kubeconfig"

step "certificates and kubeconfigs ($cluster_pki)" "$cluster_logs/pki.log"
make_pki >>"$cluster_logs/pki.log" 2>&1
make_kubeconfigs
make_admission_config

pki="$cluster_pki"
service_cidr=10.96.0.0/16
components=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

# command_for NAME: sets `cmd` to NAME's full command line.
command_for() {
  case "$1" in
    etcd)
      cmd=("$etcd_bin_dir/etcd" --name=commons-local --data-dir="$COMMONS_CLUSTER_DIR/etcd"
        --listen-client-urls="https://127.0.0.1:$ETCD_CLIENT_PORT" --advertise-client-urls="https://127.0.0.1:$ETCD_CLIENT_PORT"
        --cert-file="$pki/etcd-server.crt" --key-file="$pki/etcd-server.key"
        --trusted-ca-file="$pki/etcd-ca.crt" --client-cert-auth
        # Single member: the peer port carries no traffic; it only must not clash.
        --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT"
        --initial-cluster="commons-local=http://127.0.0.1:$ETCD_PEER_PORT"
        --listen-metrics-urls="http://127.0.0.1:$((ETCD_CLIENT_PORT + 2))"
        --quota-backend-bytes=4294967296 --snapshot-count=10000)
      ;;
    kube-apiserver)
      # shellcheck disable=SC2054 # the commas are inside flag values
      cmd=("$k8s_bin_dir/kube-apiserver" --bind-address=127.0.0.1 --advertise-address=127.0.0.1
        --secure-port="$APISERVER_PORT"
        --etcd-servers="https://127.0.0.1:$ETCD_CLIENT_PORT" --etcd-cafile="$pki/etcd-ca.crt"
        --etcd-certfile="$pki/apiserver-etcd-client.crt" --etcd-keyfile="$pki/apiserver-etcd-client.key"
        --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key"
        --client-ca-file="$pki/ca.crt"
        --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction --allow-privileged=true
        --admission-control-config-file="$COMMONS_CLUSTER_DIR/admission.yaml"
        --service-account-issuer=https://kubernetes.default.svc.cluster.local
        --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key"
        --service-cluster-ip-range="$service_cidr"
        # The kubernetes Service's endpoint would be 127.0.0.1, which the API rejects (loopback):
        # leave that Service without endpoints (nothing runs in-cluster here).
        --endpoint-reconciler-type=none
        # Stop within seconds on TERM: otherwise open watches hold the shutdown for up to 60s.
        --shutdown-send-retry-after=true
        --requestheader-client-ca-file="$pki/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client
        --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group
        --requestheader-extra-headers-prefix=X-Remote-Extra-
        --proxy-client-cert-file="$pki/front-proxy-client.crt" --proxy-client-key-file="$pki/front-proxy-client.key")
      ;;
    kube-controller-manager)
      local kc="$COMMONS_CLUSTER_DIR/kube-controller-manager.kubeconfig"
      cmd=("$k8s_bin_dir/kube-controller-manager" --kubeconfig="$kc"
        --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc"
        --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --leader-elect=false
        --use-service-account-credentials=true --root-ca-file="$pki/ca.crt"
        --service-account-private-key-file="$pki/sa.key"
        --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key"
        --service-cluster-ip-range="$service_cidr"
        # The simulated nodes' leases stop while the e2e tests restart or take away the apiserver
        # (kwok restarts with it, and up.sh replaces its leases); a controller manager started
        # moments before then marks every node and pod NotReady after its default 50 s. A kubelet
        # would report its pods Ready again; kwok does not, so they would stay NotReady for good.
        --node-monitor-grace-period=180s
        # Its default (/usr/libexec/kubernetes/...) would be created on the host.
        --flex-volume-plugin-dir="$COMMONS_CLUSTER_DIR/flexvolume")
      ;;
    kube-scheduler)
      local kc="$COMMONS_CLUSTER_DIR/kube-scheduler.kubeconfig"
      cmd=("$k8s_bin_dir/kube-scheduler" --kubeconfig="$kc"
        --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc"
        --bind-address=127.0.0.1 --secure-port="$SCHEDULER_PORT" --leader-elect=false)
      ;;
    kwok)
      cmd=("$kwok_bin_dir/kwok" --kubeconfig="$COMMONS_CLUSTER_DIR/kwok.kubeconfig"
        --config="$kwok_bin_dir/stages.yaml"
        --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake
        --node-lease-duration-seconds=40 --cidr=10.0.0.0/16 --node-ip=127.0.0.1
        --server-address="127.0.0.1:$KWOK_PORT")
      ;;
  esac
}

# healthy NAME: NAME answers its health endpoint.
healthy() {
  local out
  case "$1" in
    etcd)
      out="$(curl -fsS --max-time 3 --cacert "$pki/etcd-ca.crt" --cert "$pki/apiserver-etcd-client.crt" \
        --key "$pki/apiserver-etcd-client.key" "https://127.0.0.1:$ETCD_CLIENT_PORT/health" 2>/dev/null)" \
        && [[ "$out" == *'"health":"true"'* ]]
      ;;
    kube-apiserver)
      out="$(curl -fsS --max-time 3 --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
        "https://127.0.0.1:$APISERVER_PORT/readyz" 2>/dev/null)" && [[ "$out" == ok ]]
      ;;
    kube-controller-manager) out="$(curl -fsSk --max-time 3 "https://127.0.0.1:$KCM_PORT/healthz" 2>/dev/null)" && [[ "$out" == ok ]] ;;
    kube-scheduler) out="$(curl -fsSk --max-time 3 "https://127.0.0.1:$SCHEDULER_PORT/healthz" 2>/dev/null)" && [[ "$out" == ok ]] ;;
    kwok) out="$(curl -fsS --max-time 3 "http://127.0.0.1:$KWOK_PORT/healthz" 2>/dev/null)" && [[ "$out" == ok ]] ;;
  esac
}

# inputs_hash NAME: hash of what NAME was started from: its command line, the certificates and
# kubeconfigs, the admission configuration, kwok's stages and the build stamps (a rebuild or a new
# certificate means a restart). Only the control plane's own files count: what Commons writes lives
# elsewhere (e2e/commons.sh), so starting Commons never restarts the control plane.
inputs_hash() {
  command_for "$1"
  {
    printf '%s\n' "${cmd[@]}"
    cat "$pki"/*.crt "$pki"/*.key "$pki/sa.pub" "$COMMONS_CLUSTER_DIR"/*kubeconfig \
      "$COMMONS_CLUSTER_DIR/admission.yaml" "$kwok_bin_dir/stages.yaml" "$COMMONS_CACHE"/bin/*/.complete
  } | sha256sum | cut -d' ' -f1
}

# current NAME: NAME runs (pid file, our binary) with exactly the command line and inputs it would
# get now.
current() {
  local pid
  pid="$(live_pid "$1")" || return 1
  command_for "$1"
  [[ "$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline")" == "$(printf '%s\n' "${cmd[@]}")" ]] || return 1
  [[ "$(cat "$cluster_pids/$1.inputs" 2>/dev/null)" == "$(inputs_hash "$1")" ]]
}

nodes=(kwok-node-0 kwok-node-1 kwok-node-2)
# nodes_ready: the three kwok nodes exist and are Ready.
nodes_ready() {
  local s
  s="$(kubectl get nodes "${nodes[@]}" --request-timeout=5s \
    -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{" "}{end}' 2>/dev/null)" \
    && [[ "$s" == "True True True " ]]
}

summary() {
  kubectl get nodes -o wide | sed 's/^/    /'
  cat <<TXT

  export KUBECONFIG=$KUBECONFIG
  export PATH=$controlplane_path:\$PATH
  (or: source $controlplane_dir/env.sh)
  logs: $cluster_logs/   stop: $controlplane_dir/down.sh [--purge]
TXT
}

# Already up: every process current and healthy, the nodes Ready.
all_up=true
for name in "${components[@]}"; do
  if ! current "$name" || ! healthy "$name"; then all_up=false && break; fi
done
if $all_up && nodes_ready; then
  ok "control plane $KUBERNETES_VERSION is already up at https://127.0.0.1:$APISERVER_PORT (checked in $((SECONDS - started))s)"
  summary
  exit 0
fi

# Stop what was started with other flags, binaries or certificates: clients before servers.
for ((i = ${#components[@]} - 1; i >= 0; i--)); do
  name="${components[$i]}"
  if pid="$(live_pid "$name")" && ! current "$name"; then
    note "$name (pid $pid) was started with other flags, binaries or certificates: restarting it"
    stop_process "$name"
  fi
done

# needs_start NAME: true when NAME must be started; stops a running NAME that stays unhealthy.
needs_start() {
  local name="$1" pid
  pid="$(live_pid "$name")" || return 0
  # It may still be starting, or waiting for the apiserver: give it a while.
  if wait_until 30 "$name health" healthy "$name"; then
    ok "$name is already running (pid $pid)"
    return 1
  fi
  note "$name (pid $pid) is not healthy: restarting it"
  stop_process "$name"
}

# launch NAME: starts NAME detached (own session, no terminal, stdin closed); pid file and log in
# the state dir.
launch() {
  local name="$1" log="$cluster_logs/$1.log"
  command_for "$name"
  # Keep one previous log when a log grows past 50 MB.
  if [[ -f "$log" && "$(stat -c %s "$log")" -gt 52428800 ]]; then mv -f "$log" "$log.1"; fi
  printf '\n===== %s: starting %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${cmd[*]}" >>"$log"
  step "starting $name" "$log"
  # etcd reads ETCD_* variables as flags: keep the port settings away from it.
  setsid nohup env -u ETCD_CLIENT_PORT -u ETCD_PEER_PORT "${cmd[@]}" >>"$log" 2>&1 </dev/null 8>&- &
  echo "$!" >"$cluster_pids/$name.pid"
  inputs_hash "$name" >"$cluster_pids/$name.inputs"
}

# await NAME SECONDS: waits until NAME is healthy; fails with its log if it exits or times out.
await() {
  local name="$1" deadline=$((SECONDS + $2)) from=$SECONDS pid log="$cluster_logs/$1.log"
  pid="$(<"$cluster_pids/$name.pid")"
  until healthy "$name"; do
    alive "$pid" || fail "starting $name: it exited" "$log"
    ((SECONDS < deadline)) || fail "waiting for $name to become healthy (${2}s)" "$log"
    sleep 0.5
  done
  ok "$name is healthy in $((SECONDS - from))s (pid $pid, log $log)"
}

# etcd, then the apiserver, then its clients side by side.
if needs_start etcd; then launch etcd && await etcd 60; fi
if needs_start kube-apiserver; then launch kube-apiserver && await kube-apiserver 180; fi

step "RBAC for kwok (its upstream ClusterRole, bound to user kwok-controller)" "$cluster_logs/rbac.log"
{
  cat "$kwok_bin_dir/clusterrole.yaml"
  cat <<'YAML'
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: kwok-controller
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: kwok-controller
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: kwok-controller
YAML
} | kubectl apply --server-side --force-conflicts --field-manager=commons-local -f - >"$cluster_logs/rbac.log" 2>&1 \
  || fail "applying kwok's RBAC" "$cluster_logs/rbac.log"

to_await=()
for name in kube-controller-manager kube-scheduler kwok; do
  needs_start "$name" || continue
  if [[ "$name" == kwok ]]; then
    # A new kwok process has a new identity and would leave the nodes alone until its
    # predecessor's node leases expire (40s): remove them; kwok recreates them at once.
    kubectl -n kube-node-lease delete lease "${nodes[@]}" --ignore-not-found >"$cluster_logs/leases.log" 2>&1 \
      || fail "removing the old kwok node leases" "$cluster_logs/leases.log"
  fi
  launch "$name"
  to_await+=("$name")
done
for name in "${to_await[@]}"; do await "$name" 90; done

step "three simulated nodes (${nodes[*]})" "$cluster_logs/nodes.log"
for i in "${!nodes[@]}"; do
  cat <<YAML
---
apiVersion: v1
kind: Node
metadata:
  name: ${nodes[$i]}
  annotations:
    kwok.x-k8s.io/node: fake
  labels:
    type: kwok
    kubernetes.io/hostname: ${nodes[$i]}
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    topology.kubernetes.io/zone: zone-$i
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "110", ephemeral-storage: 1Ti}
  capacity: {cpu: "32", memory: 256Gi, pods: "110", ephemeral-storage: 1Ti}
  nodeInfo: {kubeletVersion: "$KUBERNETES_VERSION", operatingSystem: linux, architecture: amd64}
YAML
done | kubectl apply --server-side --field-manager=commons-local -f - >"$cluster_logs/nodes.log" 2>&1 \
  || fail "creating the kwok nodes" "$cluster_logs/nodes.log"
wait_until 120 "nodes Ready" nodes_ready \
  || fail "waiting for the kwok nodes to be Ready (kwok's log: $cluster_logs/kwok.log)" "$cluster_logs/kwok.log"
# Pods the node controller marked NotReady while the nodes' leases were away (Ready False with
# their containers still ready, on a node Ready again) stay so under kwok, which unlike a kubelet
# never reports them again: delete those that a controller owns, so it makes them again.
stale_pods="$(kubectl get pods -A -o jsonpath='{range .items[?(@.metadata.ownerReferences)]}{.metadata.namespace}{" "}{.metadata.name}{" "}{.status.conditions[?(@.type=="Ready")].status}{" "}{.status.conditions[?(@.type=="ContainersReady")].status}{"\n"}{end}' 2>/dev/null \
  | awk '$3 == "False" && $4 == "True" {print $1 " " $2}')" || stale_pods=""
if [[ -n "$stale_pods" ]]; then
  step "$(wc -l <<<"$stale_pods") pods left NotReady by an earlier node outage: made again by their controllers"
  while read -r ns pod; do
    kubectl -n "$ns" delete pod "$pod" --wait=false >>"$cluster_logs/nodes.log" 2>&1 || true
  done <<<"$stale_pods"
fi
# Pods are refused until the controller manager has made the namespace's default ServiceAccount.
wait_until 60 "default ServiceAccount" kubectl -n default get serviceaccount default \
  || fail "waiting for the default ServiceAccount" "$cluster_logs/kube-controller-manager.log"

ok "control plane $KUBERNETES_VERSION is up at https://127.0.0.1:$APISERVER_PORT in $((SECONDS - started))s"
summary
