#!/usr/bin/env bash
# The README's second command: every test. Formatting, lints (warnings denied), unit tests, the CRD
# YAML check, then the end-to-end tests against the real local control plane (started if needed).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
# shellcheck source=e2e/controlplane/lib.sh
source "$here/controlplane/lib.sh"
source "$here/commons.sh"
source "$here/postgres.sh"
source "$here/keycloak.sh"
source "$here/schemathesis.sh"
source "$here/addon-crds.sh"
cd "$root"
mkdir -p "$COMMONS_CACHE/logs"
started=$(date +%s)

# The control plane's first build is long: start it now and run the Rust checks meanwhile.
"$here/controlplane/up.sh" >"$COMMONS_CACHE/logs/test-controlplane-up.log" 2>&1 &
up_pid=$!
# If a check below fails, do not leave the control plane's start running unattended.
trap 'kill "$up_pid" 2>/dev/null || true' EXIT

step "cargo fmt --check"
cargo fmt --all --check
step "cargo clippy (warnings denied)"
RUSTFLAGS="${RUSTFLAGS:-} -D warnings" cargo clippy --workspace --all-targets --quiet -- -D warnings
step "unit tests"
RUSTFLAGS="${RUSTFLAGS:-} -D warnings" cargo test --workspace --exclude commons-e2e --quiet
step "building the end-to-end tests"
RUSTFLAGS="${RUSTFLAGS:-} -D warnings" cargo test -p commons-e2e --no-run --quiet 2>&1 | tail -n 3

step "waiting for the local control plane"
trap - EXIT
if ! wait "$up_pid"; then
  cat "$COMMONS_CACHE/logs/test-controlplane-up.log"
  fail "bringing up the local control plane" "$COMMONS_CACHE/logs/test-controlplane-up.log"
fi
tail -n 4 "$COMMONS_CACHE/logs/test-controlplane-up.log"
# shellcheck source=e2e/controlplane/env.sh
source "$here/controlplane/env.sh"
postgres_up
keycloak_up

# The operator under test: the binary just built (e2e/commons.sh sets a short resync, so the tests
# can watch idle resyncs happen).
commons_build
commons_install_crds
commons_start
addon_crds_install

# The README's first command, run now (as after the second on a fresh machine), restarts nothing:
# every component and commons keep their process.
step "the README's first command run again restarts nothing (e2e/up.sh)"
pids_before="$(cat "$COMMONS_CLUSTER_DIR"/pids/*.pid)"
"$here/up.sh" >"$COMMONS_CACHE/logs/test-up-again.log" 2>&1 \
  || fail "running e2e/up.sh again" "$COMMONS_CACHE/logs/test-up-again.log"
if [[ "$(cat "$COMMONS_CLUSTER_DIR"/pids/*.pid)" != "$pids_before" ]] \
  || grep -E "restarting|starting (etcd|kube-|kwok)" "$COMMONS_CACHE/logs/test-up-again.log"; then
  fail "e2e/up.sh restarted what was running" "$COMMONS_CACHE/logs/test-up-again.log"
fi
ok "nothing restarted ($(wc -l <<<"$pids_before") processes kept their pid)"

step "end-to-end tests against the real control plane"
RUSTFLAGS="${RUSTFLAGS:-} -D warnings" cargo test -p commons-e2e -- --test-threads=4

step "the portal in a browser: Debian's Chromium, real sign-in, axe-core on every page"
portal_chromium_install
export COMMONS_PORTAL_SCREENSHOTS="$COMMONS_CACHE/logs/portal-screenshots"
node --test --test-reporter=spec "$here/portal/portal.test.mjs"

schemathesis_run

ok "all tests passed in $(( $(date +%s) - started ))s"
