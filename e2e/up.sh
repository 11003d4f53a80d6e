#!/usr/bin/env bash
# The README's first command: bring up the local control plane, install the Commons CRDs, run
# `commons` against it and print what to try next. Safe to run again at any time.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
# shellcheck source=e2e/controlplane/lib.sh
source "$here/controlplane/lib.sh"
source "$here/commons.sh"

"$here/controlplane/up.sh"
# shellcheck source=e2e/controlplane/env.sh
source "$here/controlplane/env.sh"

commons_build
commons_install_crds
commons_start

cat <<TXT

Commons is running against the local control plane.

  export KUBECONFIG=$KUBECONFIG
  export PATH=$(dirname "$COMMONS_BIN"):$controlplane_path:\$PATH

Try:
  kubectl get nodes                          # three simulated (kwok) nodes
  kubectl api-resources --api-group=commons.dev
  kubectl explain tenancy.spec.organisation  # the API documents itself
  kubectl get commons -A                     # every Commons object
  curl -s http://$COMMONS_LISTEN/readyz      # the operator's readiness
  curl -s http://$COMMONS_LISTEN/metrics | grep ^commons_
  commons crds | less                        # the CRDs, generated from crds/src

Logs: $COMMONS_CLUSTER_DIR/logs/   Stop: bash e2e/down.sh   Tests: bash e2e/test.sh
TXT
