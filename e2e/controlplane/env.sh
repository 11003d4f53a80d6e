#!/usr/bin/env bash
# Source this (bash) to use the local control plane from a shell or script:
#   source e2e/controlplane/env.sh
# puts kubectl, helm, kwok, etcd and the control plane binaries on PATH (once) and points
# KUBECONFIG at the cluster's admin kubeconfig. It changes no shell options: it is sourced into
# interactive shells, where `set -e` would close the shell on the first failing command.
# shellcheck source=e2e/controlplane/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
case ":$PATH:" in
  *":$controlplane_path:"*) ;;
  *) export PATH="$controlplane_path:$PATH" ;;
esac
export KUBECONFIG="$cluster_kubeconfig"
