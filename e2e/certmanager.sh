#!/usr/bin/env bash
# cert-manager's CRDs (Certificate, Issuer), from its Go module, so the chart's cert-manager mode is
# checked by the real apiserver against cert-manager's own schemas (e2e/tests/chart.rs). Sourced
# by test.sh. Its controller is not installed: the module that builds it
# (github.com/cert-manager/cert-manager/cmd/controller) is not served by the module proxy these
# machines reach, so nothing here issues those certificates (docs/operations.md says so).

CERT_MANAGER_VERSION="${CERT_MANAGER_VERSION:-v1.21.2}"

# certmanager_crds_install: the pinned version's Certificate and Issuer CRDs (kept in the Go module
# cache after the first download; applying them again changes nothing).
certmanager_crds_install() {
  local dir log="$COMMONS_CACHE/logs/cert-manager-crds.log"
  step "cert-manager $CERT_MANAGER_VERSION's Certificate and Issuer CRDs (from its Go module)"
  dir="$(cd "$COMMONS_CACHE" && go mod download -json "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION" 2>"$log" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin).get("Dir", ""))')" || true
  [[ -n "$dir" && -d "$dir/deploy/crds" ]] || fail "downloading cert-manager's Go module" "$log"
  kubectl apply --server-side --field-manager=commons-e2e \
    -f "$dir/deploy/crds/cert-manager.io_certificates.yaml" \
    -f "$dir/deploy/crds/cert-manager.io_issuers.yaml" >>"$log" 2>&1 \
    && kubectl wait --for=condition=Established --timeout=60s \
      crd/certificates.cert-manager.io crd/issuers.cert-manager.io >>"$log" 2>&1 \
    || fail "installing cert-manager's CRDs" "$log"
}
