#!/usr/bin/env bash
# Shared settings and helpers for the local control plane scripts. Sourced, never run.

controlplane_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=e2e/controlplane/versions.env
source "$controlplane_dir/versions.env"

export COMMONS_CACHE="${COMMONS_CACHE:-$HOME/.cache/commons}"
export COMMONS_CLUSTER_DIR="${COMMONS_CLUSTER_DIR:-$COMMONS_CACHE/cluster}"
export GOTOOLCHAIN=local
mkdir -p "$COMMONS_CACHE/logs"

# Loopback ports, away from the usual defaults so a developer's other clusters do not clash.
ETCD_CLIENT_PORT="${ETCD_CLIENT_PORT:-12379}"
ETCD_PEER_PORT="${ETCD_PEER_PORT:-12380}"
APISERVER_PORT="${APISERVER_PORT:-16443}"
KCM_PORT="${KCM_PORT:-10257}"
SCHEDULER_PORT="${SCHEDULER_PORT:-10259}"
KWOK_PORT="${KWOK_PORT:-10247}"

k8s_bin_dir="$COMMONS_CACHE/bin/kubernetes-$KUBERNETES_VERSION"
etcd_bin_dir="$COMMONS_CACHE/bin/etcd-$ETCD_VERSION"
kwok_bin_dir="$COMMONS_CACHE/bin/kwok-$KWOK_VERSION"
helm_bin_dir="$COMMONS_CACHE/bin/helm-$HELM_VERSION"
controlplane_path="$k8s_bin_dir:$etcd_bin_dir:$kwok_bin_dir:$helm_bin_dir"

if [[ -t 1 ]]; then _bold=$'\e[1m'; _red=$'\e[31m'; _green=$'\e[32m'; _off=$'\e[0m'; else _bold=""; _red=""; _green=""; _off=""; fi

# step "what is happening": a progress line.
step() { printf '%s==>%s %s\n' "$_bold" "$_off" "$*"; }
# ok "what is done": a success line.
ok() { printf '%s ok%s %s\n' "$_green" "$_off" "$*"; }
# fail "step" [log]: names the failed step and its log, shows the log's tail, exits 1.
fail() {
  printf '%sFAILED%s: %s\n' "$_red" "$_off" "$1" >&2
  if [[ -n "${2:-}" ]]; then
    printf '  log: %s\n' "$2" >&2
    if [[ -f "$2" ]]; then tail -n 30 "$2" | sed 's/^/  | /' >&2; fi
  fi
  exit 1
}

# wait_until SECONDS DESCRIPTION COMMAND...: polls COMMAND every half second.
wait_until() {
  local seconds="$1" what="$2"
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then return 1; fi
    sleep 0.5
  done
}
