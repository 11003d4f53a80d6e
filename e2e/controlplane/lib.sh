#!/usr/bin/env bash
# Shared settings and helpers of the local control plane scripts. Sourced (by these scripts,
# env.sh and e2e/*.sh), never run; it only defines variables and functions.
# shellcheck disable=SC2034 # its variables are for the scripts that source it

controlplane_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=e2e/controlplane/versions.env
source "$controlplane_dir/versions.env"

# Everything lives under one cache root: built binaries, build logs and the cluster's state.
export COMMONS_CACHE="${COMMONS_CACHE:-$HOME/.cache/commons}"
export COMMONS_CLUSTER_DIR="${COMMONS_CLUSTER_DIR:-$COMMONS_CACHE/cluster}"

# Loopback ports, away from the usual defaults (2379/2380, 6443, 10257, 10259, 10247) so another
# cluster on the same machine does not clash. etcd also serves metrics on ETCD_CLIENT_PORT + 2.
ETCD_CLIENT_PORT="${ETCD_CLIENT_PORT:-12379}"
ETCD_PEER_PORT="${ETCD_PEER_PORT:-12380}"
APISERVER_PORT="${APISERVER_PORT:-16443}"
KCM_PORT="${KCM_PORT:-16257}"
SCHEDULER_PORT="${SCHEDULER_PORT:-16259}"
KWOK_PORT="${KWOK_PORT:-16247}"

# One directory per component and version: bin/<component>-<version>/.
k8s_bin_dir="$COMMONS_CACHE/bin/kubernetes-$KUBERNETES_VERSION"
etcd_bin_dir="$COMMONS_CACHE/bin/etcd-$ETCD_VERSION"
kwok_bin_dir="$COMMONS_CACHE/bin/kwok-$KWOK_VERSION"
helm_bin_dir="$COMMONS_CACHE/bin/helm-$HELM_VERSION"
controlplane_path="$k8s_bin_dir:$etcd_bin_dir:$kwok_bin_dir:$helm_bin_dir"

# The cluster's state: certificates, etcd data, logs, pid files and kubeconfigs.
cluster_pki="$COMMONS_CLUSTER_DIR/pki"
cluster_logs="$COMMONS_CLUSTER_DIR/logs"
cluster_pids="$COMMONS_CLUSTER_DIR/pids"
cluster_kubeconfig="$COMMONS_CLUSTER_DIR/kubeconfig"

if [[ -t 1 ]]; then
  _bold=$'\e[1m' _red=$'\e[31m' _green=$'\e[32m' _yellow=$'\e[33m' _off=$'\e[0m'
else
  _bold="" _red="" _green="" _yellow="" _off=""
fi
current_step="" current_log=""

# step WHAT [LOG]: a progress line; WHAT (and LOG, if the step writes one) is what an unexpected
# failure reports (see report_errors).
step() {
  current_step="$1" current_log="${2:-}"
  printf '%s==>%s %s\n' "$_bold" "$_off" "$1"
}
# ok "what is done": a success line.
ok() { printf '%s ok%s %s\n' "$_green" "$_off" "$*"; }
# note "something worth knowing": a warning line.
note() { printf '%s  !%s %s\n' "$_yellow" "$_off" "$*"; }

# fail [WHAT] [LOG]: names the failed step (WHAT, else the current step) and its log, shows the
# log's last 30 lines, exits 1.
fail() {
  local what="${1:-${current_step:-unknown step}}" log="${2:-}" from
  printf '%sFAILED%s: %s\n' "$_red" "$_off" "$what" >&2
  if [[ -n "$log" ]]; then
    printf '  log: %s\n' "$log" >&2
    if [[ -s "$log" ]]; then
      # A process log holds every start (up.sh marks each with =====): show the last one only.
      from="$(grep -n '^===== ' "$log" | tail -n 1 | cut -d: -f1)"
      printf '  last lines:\n' >&2
      tail -n +"${from:-1}" "$log" | tail -n 30 | sed 's/^/  | /' >&2
    fi
  fi
  exit 1
}

# report_errors: makes an unexpected failing command report the current step and its log instead
# of exiting silently under `set -e`.
report_errors() {
  set -E
  trap 'fail "${current_step:-unknown step} (command failed at ${BASH_SOURCE[0]##*/}:$LINENO)" "$current_log"' ERR
}

# wait_until SECONDS DESCRIPTION COMMAND...: runs COMMAND every half second until it succeeds;
# returns 1 after SECONDS. DESCRIPTION is for the reader.
wait_until() {
  local seconds="$1"
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then return 1; fi
    sleep 0.5
  done
}

# ---- processes started by up.sh: $cluster_pids/NAME.pid, $cluster_logs/NAME.log ----

# live_pid NAME: prints the pid from NAME's pid file when that process is alive and is one of our
# NAME binaries (argv[0] is $COMMONS_CACHE/bin/*/NAME), so a reused pid is never mistaken.
live_pid() {
  local file="$cluster_pids/$1.pid" pid argv0
  [[ -f "$file" ]] || return 1
  pid="$(<"$file")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  argv0="$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" | head -n 1)" || return 1
  [[ "$argv0" == "$COMMONS_CACHE/bin/"*"/$1" ]] || return 1
  echo "$pid"
}

# alive PID: the process exists and has not exited (an exited process can stay a zombie for a
# while when its new parent, init, is slow to reap it).
alive() {
  local state
  state="$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)" || return 1
  [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

# stop_process NAME [SECONDS]: TERM, then KILL after SECONDS (default 15); removes the pid file.
stop_process() {
  local name="$1" seconds="${2:-15}" pid i
  if pid="$(live_pid "$name")"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < seconds * 10; i++)); do
      alive "$pid" || break
      sleep 0.1
    done
    if alive "$pid"; then
      note "$name (pid $pid) did not stop within ${seconds}s: killing it"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
    fi
  fi
  rm -f "$cluster_pids/$name.pid"
}
