#!/usr/bin/env bash
# Stops the local control plane that up.sh started. `--purge` also deletes its state (etcd data,
# certificates, logs); the built binaries stay cached.
set -euo pipefail
# shellcheck source=e2e/controlplane/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
pids="$COMMONS_CLUSTER_DIR/pids"

stop() {
  local name="$1" pid
  [[ -f "$pids/$name.pid" ]] || return 0
  pid="$(cat "$pids/$name.pid")"
  if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "/$name "; then
    step "stopping $name (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$pids/$name.pid"
}

# Reverse start order: the apiserver's clients first, etcd last.
for name in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do stop "$name"; done
if [[ "${1:-}" == "--purge" ]]; then
  step "deleting $COMMONS_CLUSTER_DIR"
  rm -rf "$COMMONS_CLUSTER_DIR"
fi
ok "local control plane stopped"
