#!/usr/bin/env bash
# Shared steps for building and running `commons` on the local control plane. Sourced by up.sh,
# down.sh and test.sh after e2e/controlplane/lib.sh.

root="${root:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
# shellcheck source=e2e/portal.sh
source "$(dirname "${BASH_SOURCE[0]}")/portal.sh"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$COMMONS_CACHE/target}"
# COMMONS_PROFILE=release runs an optimised build (for the benchmarks' memory and speed figures).
COMMONS_PROFILE="${COMMONS_PROFILE:-dev}"
COMMONS_BIN="$CARGO_TARGET_DIR/$([[ "$COMMONS_PROFILE" == dev ]] && echo debug || echo "$COMMONS_PROFILE")/commons"
export COMMONS_LISTEN="${COMMONS_LISTEN:-127.0.0.1:18080}"
export COMMONS_WEBHOOK_LISTEN="${COMMONS_WEBHOOK_LISTEN:-127.0.0.1:18443}"
export COMMONS_WEBHOOK_CERT_DIR="${COMMONS_WEBHOOK_CERT_DIR:-$COMMONS_CLUSTER_DIR/webhook}"
# The CA of the one client certificate the webhook accepts: the apiserver's (see
# e2e/controlplane/certs.sh, make_admission_config).
export COMMONS_WEBHOOK_CLIENT_CA="${COMMONS_WEBHOOK_CLIENT_CA:-$COMMONS_CLUSTER_DIR/pki/webhook-client-ca.crt}"
# A short resync, so idle resyncs can be watched happening (the production default is 300 s).
export COMMONS_RESYNC_SECONDS="${COMMONS_RESYNC_SECONDS:-10}"
# Spend is weighed against budgets every few seconds here (the production default is 300 s).
export COMMONS_BUDGET_SECONDS="${COMMONS_BUDGET_SECONDS:-5}"
# The registries images may come from in tenancies that list none (the local cloud's own).
# The local control plane's pod (kwok --cidr) and service (--service-cluster-ip-range) networks.
export COMMONS_CLUSTER_NETWORKS="${COMMONS_CLUSTER_NETWORKS:-10.0.0.0/16,10.96.0.0/16}"
export COMMONS_ALLOWED_REGISTRIES="${COMMONS_ALLOWED_REGISTRIES:-registry.example,registry.example.gov.uk,registry.k8s.io}"
# The ledger metering keeps: an SQLite file beside the cluster's state (the default store).
# Leader election is on, as in a cluster: the e2e tests start a second replica beside this one.
export COMMONS_LEADER_NAMESPACE="${COMMONS_LEADER_NAMESPACE:-commons-system}"
COMMONS_FOLLOWER_LISTEN="127.0.0.1:18081"
COMMONS_FOLLOWER_WEBHOOK_LISTEN="127.0.0.1:18444"
export COMMONS_LEDGER="${COMMONS_LEDGER:-sqlite://$COMMONS_CLUSTER_DIR/ledger.db}"
# Commons' own PKI (the webhook's serving CA), apart from the control plane's pki/: the control
# plane restarts a component whose certificates changed, and Commons' must not count as such.
commons_pki="$COMMONS_CLUSTER_DIR/commons-pki"
COMMONS_PID="$COMMONS_CLUSTER_DIR/pids/commons.pid"
COMMONS_INPUTS="$COMMONS_CLUSTER_DIR/pids/commons.inputs"
COMMONS_LOG="$COMMONS_CLUSTER_DIR/logs/commons.log"
# The portal's client secret at the local identity provider (e2e/keycloak/commons-realm.json).
COMMONS_PORTAL_SECRET_FILE="$COMMONS_CLUSTER_DIR/portal-client-secret"

commons_build() {
  step "building commons (cargo; the first build takes a few minutes)"
  # The same flags as e2e/test.sh, so its build is reused rather than redone.
  (cd "$root" && RUSTFLAGS="${RUSTFLAGS:-} -D warnings" cargo build --quiet --profile "$COMMONS_PROFILE" -p commons-operator --bin commons) >"$COMMONS_CACHE/logs/build-commons.log" 2>&1 \
    || fail "building commons" "$COMMONS_CACHE/logs/build-commons.log"
}

commons_install_crds() {
  step "installing the Commons CRDs"
  kubectl apply --server-side --force-conflicts --field-manager=commons-install -f "$root/crds/yaml" >"$COMMONS_CLUSTER_DIR/logs/crds.log" 2>&1 \
    || fail "installing the CRDs" "$COMMONS_CLUSTER_DIR/logs/crds.log"
  kubectl wait --for=condition=Established --timeout=60s -f "$root/crds/yaml" >>"$COMMONS_CLUSTER_DIR/logs/crds.log" 2>&1 \
    || fail "waiting for the CRDs to be Established" "$COMMONS_CLUSTER_DIR/logs/crds.log"
}

# commons_webhook_certs: the quota webhook's serving certificate, from its own CA (the apiserver
# trusts it through the webhook's caBundle), laid out as a kubernetes.io/tls Secret would be.
commons_webhook_certs() {
  # shellcheck source=e2e/controlplane/certs.sh
  source "$root/e2e/controlplane/certs.sh"
  local old_umask host="${COMMONS_WEBHOOK_LISTEN%:*}" cluster_pki="$commons_pki"
  old_umask="$(umask)"
  umask 077
  mkdir -p "$cluster_pki" "$COMMONS_WEBHOOK_CERT_DIR"
  new_ca webhook-ca commons-local-webhook-ca >/dev/null 2>&1
  cert commons-webhook webhook-ca "/CN=commons-webhook" serverAuth "IP:$host,DNS:localhost" >/dev/null 2>&1 \
    || { umask "$old_umask"; fail "making the webhook certificate"; }
  cp "$cluster_pki/webhook-ca.crt" "$COMMONS_WEBHOOK_CERT_DIR/ca.crt"
  cp "$cluster_pki/commons-webhook.crt" "$COMMONS_WEBHOOK_CERT_DIR/tls.crt"
  cp "$cluster_pki/commons-webhook.key" "$COMMONS_WEBHOOK_CERT_DIR/tls.key"
  umask "$old_umask"
}

# commons_rotate_webhook_certs: a new CA and serving certificate written over the files the
# running webhook serves, as a certificate manager renewing them would (the files change one by one).
commons_rotate_webhook_certs() {
  # shellcheck source=e2e/controlplane/certs.sh
  source "$root/e2e/controlplane/certs.sh"
  rm -f "$commons_pki/webhook-ca.crt" "$commons_pki/webhook-ca.key" \
    "$commons_pki/commons-webhook.crt" "$commons_pki/commons-webhook.key" "$commons_pki/commons-webhook.spec"
  commons_webhook_certs
}

commons_stop() {
  if [[ -f "$COMMONS_PID" ]]; then
    local pid
    pid="$(cat "$COMMONS_PID")"
    if kill -0 "$pid" 2>/dev/null && grep -q "commons" "/proc/$pid/cmdline" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$COMMONS_PID"
  fi
}

# commons_command: the command line commons runs with.
commons_command() {
  commons_cmd=("$COMMONS_BIN" run --listen "$COMMONS_LISTEN" --resync-seconds "$COMMONS_RESYNC_SECONDS"
    --webhook-listen "$COMMONS_WEBHOOK_LISTEN" --webhook-cert-dir "$COMMONS_WEBHOOK_CERT_DIR"
    --webhook-client-ca "$COMMONS_WEBHOOK_CLIENT_CA" --allowed-registries "$COMMONS_ALLOWED_REGISTRIES"
    --cluster-networks "$COMMONS_CLUSTER_NETWORKS" --ledger "$COMMONS_LEDGER"
    --oidc-issuer "${COMMONS_E2E_OIDC_ISSUER:-http://127.0.0.1:18180/realms/commons}"
    --oidc-username-claim preferred_username
    --request-policy "$root/docs/examples/request-policy.yaml"
    --portal-client-id commons-portal --portal-client-secret-file "$COMMONS_PORTAL_SECRET_FILE"
    --portal-public-url "http://$COMMONS_LISTEN" --portal-assets "$COMMONS_PORTAL_ASSETS"
    --leader-elect --leader-namespace "$COMMONS_LEADER_NAMESPACE")
}

# commons_inputs: a hash of what commons runs from: the binary, its command line, its kubeconfig
# and the certificates it reads at start.
commons_inputs() {
  commons_command
  {
    printf '%s\n' "${commons_cmd[@]}"
    cat "$COMMONS_BIN" "${COMMONS_OPERATOR_KUBECONFIG:-$KUBECONFIG}" "$COMMONS_WEBHOOK_CLIENT_CA" "$COMMONS_WEBHOOK_CERT_DIR"/*
  } 2>/dev/null | sha256sum | cut -d' ' -f1
}

# commons_current: commons runs (pid file, our binary) from exactly the inputs it would get now.
commons_current() {
  local pid
  pid="$(cat "$COMMONS_PID" 2>/dev/null)" || return 1
  kill -0 "$pid" 2>/dev/null && grep -q "commons" "/proc/$pid/cmdline" 2>/dev/null || return 1
  [[ "$(cat "$COMMONS_INPUTS" 2>/dev/null)" == "$(commons_inputs)" ]] \
    && curl -fsS "http://$COMMONS_LISTEN/readyz" >/dev/null 2>&1
}

commons_start() {
  step "starting commons on $COMMONS_LISTEN (quota webhook on https://$COMMONS_WEBHOOK_LISTEN)"
  commons_webhook_certs
  portal_npm_install
  printf 'commons-portal-e2e-secret\n' >"$COMMONS_PORTAL_SECRET_FILE"
  # The running process is always the binary just built, with these settings; one that already
  # is, and is ready, is left alone.
  if commons_current; then
    ok "commons is already running (pid $(cat "$COMMONS_PID"), log $COMMONS_LOG)"
    return 0
  fi
  commons_stop
  commons_leader_namespace
  mkdir -p "$(dirname "$COMMONS_PID")" "$(dirname "$COMMONS_LOG")"
  commons_command
  # COMMONS_OPERATOR_KUBECONFIG: another identity for commons itself (the least-privilege e2e
  # test runs it as the Helm chart's ServiceAccount); the scripts' kubectl stays the admin.
  KUBECONFIG="${COMMONS_OPERATOR_KUBECONFIG:-$KUBECONFIG}" setsid nohup "${commons_cmd[@]}" >>"$COMMONS_LOG" 2>&1 </dev/null &
  echo $! >"$COMMONS_PID"
  commons_inputs >"$COMMONS_INPUTS"
  # Ready, and leading (a Lease left by a replica killed moments ago expires first).
  for _ in $(seq 120); do
    if curl -fsS "http://$COMMONS_LISTEN/readyz" >/dev/null 2>&1 \
      && curl -fsS "http://$COMMONS_LISTEN/metrics" 2>/dev/null | grep -qx "commons_leading 1"; then
      ok "commons is ready and leading (pid $(cat "$COMMONS_PID"), log $COMMONS_LOG)"
      return 0
    fi
    kill -0 "$(cat "$COMMONS_PID")" 2>/dev/null || fail "starting commons (it exited)" "$COMMONS_LOG"
    sleep 0.5
  done
  fail "waiting for commons /readyz and the leader Lease" "$COMMONS_LOG"
}

# commons_leader_namespace: the namespace of the leader Lease, made once.
commons_leader_namespace() {
  kubectl get namespace "$COMMONS_LEADER_NAMESPACE" >/dev/null 2>&1 \
    || kubectl create namespace "$COMMONS_LEADER_NAMESPACE" >/dev/null
}

# commons_follower_start: a second replica of the same binary and settings on other ports (API
# $COMMONS_FOLLOWER_LISTEN, webhook $COMMONS_FOLLOWER_WEBHOOK_LISTEN), for the e2e tests of
# leader election and failover; it waits as a follower while the first replica leads.
commons_follower_start() {
  local pid_file="$COMMONS_CLUSTER_DIR/pids/commons-follower.pid" log="$COMMONS_CLUSTER_DIR/logs/commons-follower.log"
  commons_follower_stop
  COMMONS_LISTEN="$COMMONS_FOLLOWER_LISTEN" COMMONS_WEBHOOK_LISTEN="$COMMONS_FOLLOWER_WEBHOOK_LISTEN" commons_command
  KUBECONFIG="$KUBECONFIG" setsid nohup "${commons_cmd[@]}" >>"$log" 2>&1 </dev/null &
  echo $! >"$pid_file"
  for _ in $(seq 120); do
    if curl -fsS "http://$COMMONS_FOLLOWER_LISTEN/readyz" >/dev/null 2>&1; then
      ok "the second replica is ready (pid $(cat "$pid_file"), log $log)"
      return 0
    fi
    kill -0 "$(cat "$pid_file")" 2>/dev/null || fail "starting the second replica (it exited)" "$log"
    sleep 0.5
  done
  fail "waiting for the second replica's /readyz" "$log"
}

# commons_follower_stop: stops the second replica (SIGTERM: it gives the Lease up if it holds it).
commons_follower_stop() {
  local pid_file="$COMMONS_CLUSTER_DIR/pids/commons-follower.pid" pid
  pid="$(cat "$pid_file" 2>/dev/null)" || return 0
  if kill -0 "$pid" 2>/dev/null && grep -q "commons" "/proc/$pid/cmdline" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 250); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pid_file"
}

# commons_kill: SIGKILL the first replica (no chance to give the Lease up), as a lost node would.
commons_kill() {
  local pid
  pid="$(cat "$COMMONS_PID" 2>/dev/null)" || return 0
  kill -9 "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$COMMONS_PID"
}
