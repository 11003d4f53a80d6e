#!/usr/bin/env bash
# The CRDs of the add-ons the chart can use, from their Go modules, so the chart's objects of those
# kinds are checked by the real apiserver against the add-ons' own schemas (e2e/tests/chart.rs):
# cert-manager's Certificate and Issuer (webhook.certificate.certManager) and the Prometheus
# Operator's ServiceMonitor (serviceMonitor.enabled). Sourced by test.sh.
#
# Only the CRDs: no controller acts on those objects here. cert-manager's controller is built from
# a module (github.com/cert-manager/cert-manager/cmd/controller) that the module proxy these
# machines reach does not serve, so nothing here issues certificates (docs/operations.md).

CERT_MANAGER_VERSION="${CERT_MANAGER_VERSION:-v1.21.2}"
PROMETHEUS_OPERATOR_VERSION="${PROMETHEUS_OPERATOR_VERSION:-v0.85.0}"

# addon_module_dir MODULE@VERSION: the module's directory in the Go module cache (downloaded once).
addon_module_dir() {
  (cd "$COMMONS_CACHE" && go mod download -json "$1" 2>>"$COMMONS_CACHE/logs/addon-crds.log") \
    | python3 -c 'import json, sys; print(json.load(sys.stdin).get("Dir", ""))' || true
}

# addon_crds_install: the pinned versions' CRDs (applying them again changes nothing).
addon_crds_install() {
  local certs monitoring log="$COMMONS_CACHE/logs/addon-crds.log"
  step "the CRDs of cert-manager $CERT_MANAGER_VERSION (Certificate, Issuer) and the Prometheus Operator $PROMETHEUS_OPERATOR_VERSION (ServiceMonitor), from their Go modules"
  : >"$log"
  certs="$(addon_module_dir "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION")/deploy/crds"
  monitoring="$(addon_module_dir "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION")/example/prometheus-operator-crd"
  [[ -d "$certs" && -d "$monitoring" ]] || fail "downloading the add-ons' Go modules" "$log"
  kubectl apply --server-side --field-manager=commons-e2e \
    -f "$certs/cert-manager.io_certificates.yaml" \
    -f "$certs/cert-manager.io_issuers.yaml" \
    -f "$monitoring/monitoring.coreos.com_servicemonitors.yaml" >>"$log" 2>&1 \
    && kubectl wait --for=condition=Established --timeout=60s crd/certificates.cert-manager.io \
      crd/issuers.cert-manager.io crd/servicemonitors.monitoring.coreos.com >>"$log" 2>&1 \
    || fail "installing the add-ons' CRDs" "$log"
}
