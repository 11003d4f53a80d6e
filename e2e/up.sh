#!/usr/bin/env bash
# The README's first command: bring up the local control plane, install the Commons CRDs, run
# `commons` against it and print what to try next. Safe to run again at any time.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
# shellcheck source=e2e/controlplane/lib.sh
source "$here/controlplane/lib.sh"
source "$here/commons.sh"
source "$here/postgres.sh"
source "$here/keycloak.sh"

"$here/controlplane/up.sh"
postgres_up
keycloak_up
# shellcheck source=e2e/controlplane/env.sh
source "$here/controlplane/env.sh"

commons_build
commons_install_crds
commons_start

step "applying the example tenancies (docs/examples/tenancies.yaml)"
kubectl apply --server-side --field-manager=commons-examples -f "$root/docs/examples/tenancies.yaml" >"$COMMONS_CLUSTER_DIR/logs/examples.log" 2>&1 \
  || fail "applying the example tenancies" "$COMMONS_CLUSTER_DIR/logs/examples.log"
kubectl wait --for=condition=Ready --timeout=120s -f "$root/docs/examples/tenancies.yaml" >>"$COMMONS_CLUSTER_DIR/logs/examples.log" 2>&1 \
  || fail "waiting for the example tenancies to be Ready" "$COMMONS_CLUSTER_DIR/logs/examples.log"
kubectl get tenancies | sed 's/^/   /'

step "applying the example network segments (docs/examples/network-segments.yaml)"
kubectl apply --server-side --field-manager=commons-examples -f "$root/docs/examples/network-segments.yaml" >>"$COMMONS_CLUSTER_DIR/logs/examples.log" 2>&1 \
  || fail "applying the example network segments" "$COMMONS_CLUSTER_DIR/logs/examples.log"
kubectl wait --for=condition=Ready --timeout=120s -f "$root/docs/examples/network-segments.yaml" >>"$COMMONS_CLUSTER_DIR/logs/examples.log" 2>&1 \
  || fail "waiting for the example network segments to be Ready" "$COMMONS_CLUSTER_DIR/logs/examples.log"
kubectl get networksegments | sed 's/^/   /'

step "applying the example hosted services and subscriptions (docs/examples/hosted-services.yaml)"
kubectl apply --server-side --field-manager=commons-examples -f "$root/docs/examples/hosted-services.yaml" >>"$COMMONS_CLUSTER_DIR/logs/examples.log" 2>&1 \
  || fail "applying the example hosted services" "$COMMONS_CLUSTER_DIR/logs/examples.log"
kubectl wait --for=condition=Ready --timeout=120s -f "$root/docs/examples/hosted-services.yaml" >>"$COMMONS_CLUSTER_DIR/logs/examples.log" 2>&1 \
  || fail "waiting for the example hosted services and subscriptions to be Ready" "$COMMONS_CLUSTER_DIR/logs/examples.log"
kubectl get hostedservices,subscriptions -A | sed 's/^/   /'
echo
"$COMMONS_BIN" catalogue | sed 's/^/   /'
echo

step "applying the example rate card (docs/examples/rate-cards.yaml)"
kubectl apply --server-side --field-manager=commons-examples -f "$root/docs/examples/rate-cards.yaml" >>"$COMMONS_CLUSTER_DIR/logs/examples.log" 2>&1 \
  || fail "applying the example rate card" "$COMMONS_CLUSTER_DIR/logs/examples.log"
kubectl wait --for=condition=InForce --timeout=60s -f "$root/docs/examples/rate-cards.yaml" >>"$COMMONS_CLUSTER_DIR/logs/examples.log" 2>&1 \
  || note "the example rate card is not in force (kubectl describe ratecard standard-2026): a later card in this cluster supersedes it"
kubectl get ratecards | sed 's/^/   /'
step "applying the example VAT rate (docs/examples/vat-rates.yaml)"
kubectl apply --server-side --field-manager=commons-examples -f "$root/docs/examples/vat-rates.yaml" >>"$COMMONS_CLUSTER_DIR/logs/examples.log" 2>&1 \
  || fail "applying the example VAT rate" "$COMMONS_CLUSTER_DIR/logs/examples.log"
kubectl get vatrates | sed 's/^/   /'
echo
step "granting the REST API's roles to the example identity provider's groups (docs/examples/api-access.yaml)"
kubectl apply --server-side --field-manager=commons-examples -f "$root/docs/examples/api-access.yaml" >>"$COMMONS_CLUSTER_DIR/logs/examples.log" 2>&1 \
  || fail "applying the API's roles" "$COMMONS_CLUSTER_DIR/logs/examples.log"
echo
step "month-to-date spend by organisation (commons report)"
if report="$("$COMMONS_BIN" report --period "$(date -u +%Y-%m)" --by organisation --ledger "$COMMONS_LEDGER" 2>&1)"; then
  sed 's/^/   /' <<<"$report"
else
  note "commons report: $report"
fi
echo
"$COMMONS_BIN" reachability --services | sed 's/^/   /'

cat <<TXT

Commons is running against the local control plane.

  export KUBECONFIG=$KUBECONFIG
  export PATH=$(dirname "$COMMONS_BIN"):$controlplane_path:\$PATH

Try:
  kubectl get nodes                          # three simulated (kwok) nodes
  kubectl api-resources --api-group=commons.dev
  kubectl explain tenancy.spec.organisation  # the API documents itself
  kubectl get tenancies                      # the example tenancies, Ready
  kubectl describe tenancy northshire-council   # conditions, quota, namespaces, Events
  kubectl get ns -l commons.dev/tenancy --show-labels
  # an owner may run workloads (yes) but not change the quota Commons manages (no):
  kubectl auth can-i create deployments -n northshire-council-revenues --as someone --as-group northshire-platform-admins
  kubectl auth can-i update resourcequotas -n northshire-council-revenues --as someone --as-group northshire-platform-admins
  kubectl get validatingwebhookconfiguration quota.commons.dev   # the tenancy-wide quota and policy checks, served by commons
  kubectl delete tenancy northshire-council --dry-run=server    # refused: deletion protection, and how to lift it
  curl -s http://$COMMONS_LISTEN/metrics | grep ^commons_admission   # its decisions and held reservations
  kubectl get networksegments                # psn, hscn (psn peers into it), secure
  kubectl get netpol -A -l commons.dev/segment  # the paths segments open
  commons reachability                       # who can reach whom (tenancies with pods), from the live policies
  kubectl get hostedservices,subscriptions -A   # payroll, shared by Northshire with two councils; one instance
  kubectl describe hostedservice payroll -n northshire-council-revenues   # its consumers, conditions, Events
  kubectl scale hostedservice payroll -n northshire-council-revenues --replicas=3
  commons catalogue                          # the applications store
  commons report --period $(date -u +%Y-%m) --ledger $COMMONS_LEDGER   # month-to-date spend per tenancy
  commons report --period $(date -u +%Y-%m) --by sector --format csv --ledger $COMMONS_LEDGER
  commons report --period $(date -u +%Y-%m) --savings --ledger $COMMONS_LEDGER   # what sharing payroll saved
  sqlite3 ${COMMONS_LEDGER#sqlite://} 'select kind, namespace, object_name, start_ms, end_ms from allocation_interval'   # the raw intervals
  commons reachability --services            # southshire and westshire reach payroll; nothing else of Northshire's
  kubectl get commons -A                     # every Commons object
  curl -s $COMMONS_E2E_OIDC_ISSUER/.well-known/openid-configuration   # the OIDC provider (Keycloak), realm commons
  # the REST API (docs/api.md): a token for Nora (Northshire, requester), then her tenancies
  # (other example users: sam (Southshire), finn (finance), cara (central finance), pat (platform admin); password <name>-password)
  TOKEN=\$(curl -s -d grant_type=password -d client_id=commons-e2e -d username=nora -d password=nora-password \\
    $COMMONS_E2E_OIDC_ISSUER/protocol/openid-connect/token | jq -r .access_token)
  curl -s -H "Authorization: Bearer \$TOKEN" http://$COMMONS_LISTEN/v1/tenancies | jq
  curl -s -H "Authorization: Bearer \$TOKEN" http://$COMMONS_LISTEN/v1/whoami | jq
  # the portal (docs/portal.md): open it in a browser and sign in as nora, pat, sam... (password <name>-password)
  xdg-open http://$COMMONS_LISTEN/portal
  # an API key for a finance system (printed once; commons apikey list / revoke ID):
  commons apikey create --organisation northshire-county-council --role finance --expires 90d --ledger $COMMONS_LEDGER
  curl -s http://$COMMONS_LISTEN/readyz      # the operator's readiness
  curl -s http://$COMMONS_LISTEN/metrics | grep ^commons_
  commons crds | less                        # the CRDs, generated from crds/src

Logs: $COMMONS_CLUSTER_DIR/logs/   Stop: bash e2e/down.sh   Tests: bash e2e/test.sh
TXT
