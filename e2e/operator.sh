#!/usr/bin/env bash
# Starts, stops or restarts the `commons` process on the local control plane, or restarts the
# kube-apiserver under it (used by the e2e tests that prove behaviour across an operator outage or
# restart, and across an apiserver restart or outage), or rotates the quota webhook's certificate under it.
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
  restart-apiserver)
    pid_file="$COMMONS_CLUSTER_DIR/pids/kube-apiserver.pid"
    if [[ -f "$pid_file" ]]; then
      pid="$(cat "$pid_file")"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    # An outage of a given length: `restart-apiserver SECONDS` keeps it down that long.
    sleep "${2:-0}"
    # Starts whatever is not running (here: the apiserver) and waits until it is healthy.
    "$here/controlplane/up.sh" >"$COMMONS_CLUSTER_DIR/logs/restart-apiserver.log" 2>&1 \
      || fail "restarting the kube-apiserver" "$COMMONS_CLUSTER_DIR/logs/restart-apiserver.log"
    ;;
  rotate-webhook-certs) commons_rotate_webhook_certs ;;
  kill) commons_kill ;;
  start-follower) commons_follower_start ;;
  stop-follower) commons_follower_stop ;;
  webhook-cert-dir) echo "$COMMONS_WEBHOOK_CERT_DIR" ;;
  *) echo "usage: $0 start|stop|restart|kill|start-follower|stop-follower|restart-apiserver [SECONDS]|rotate-webhook-certs|webhook-cert-dir" >&2; exit 2 ;;
esac
