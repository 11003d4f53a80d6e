#!/usr/bin/env bash
# Starts, stops or restarts the `commons` process on the local control plane (used by the e2e
# tests that prove behaviour across an operator outage or restart).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=e2e/controlplane/lib.sh
source "$here/controlplane/lib.sh"
source "$here/commons.sh"
export KUBECONFIG="${KUBECONFIG:-$COMMONS_CLUSTER_DIR/kubeconfig}"
case "${1:-}" in
  start) commons_start ;;
  stop) commons_stop ;;
  restart) commons_stop; commons_start ;;
  *) echo "usage: $0 start|stop|restart" >&2; exit 2 ;;
esac
