#!/usr/bin/env bash
# Stops the local control plane that up.sh started, by its pid files: each pid is checked to be
# our binary before it gets TERM, then KILL after 15 seconds. Safe when nothing runs.
# Usage: down.sh          stop; the cluster's data stays for the next up.sh
#        down.sh --purge  stop and delete $COMMONS_CLUSTER_DIR (etcd data, certificates, logs);
#                         the built binaries stay cached
set -euo pipefail
# shellcheck source=e2e/controlplane/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

purge=false
case "${1:-}" in
  "") ;;
  --purge) purge=true ;;
  -h | --help) sed -n '2,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' && exit 0 ;;
  *) fail "unknown argument '$1' (see --help)" ;;
esac
report_errors

# The apiserver's clients first, etcd last.
stopped=0
for name in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
  if pid="$(live_pid "$name")"; then
    step "stopping $name (pid $pid)"
    stop_process "$name"
    stopped=$((stopped + 1))
  fi
  rm -f "$cluster_pids/$name.pid" "$cluster_pids/$name.inputs"
done
if ((stopped == 0)); then ok "nothing was running"; else ok "local control plane stopped"; fi

if $purge && [[ -d "$COMMONS_CLUSTER_DIR" ]]; then
  # Only a directory up.sh made (marker file, or the pki and etcd directories it creates).
  if [[ -f "$COMMONS_CLUSTER_DIR/.commons-cluster" || (-d "$COMMONS_CLUSTER_DIR/pki" && -d "$COMMONS_CLUSTER_DIR/etcd") ]]; then
    step "deleting $COMMONS_CLUSTER_DIR"
    rm -rf "$COMMONS_CLUSTER_DIR"
    ok "cluster state deleted (binaries kept in $COMMONS_CACHE/bin)"
  else
    fail "not deleting $COMMONS_CLUSTER_DIR: it does not look like a cluster made by up.sh"
  fi
fi
