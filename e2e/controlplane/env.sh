#!/usr/bin/env bash
# Source this to use the local control plane from a shell: kubectl, helm and KUBECONFIG.
# shellcheck source=e2e/controlplane/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
export PATH="$controlplane_path:$PATH"
export KUBECONFIG="$COMMONS_CLUSTER_DIR/kubeconfig"
