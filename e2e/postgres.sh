#!/usr/bin/env bash
# PostgreSQL for the ledger's production store: Debian's package, installed if missing, and one
# server on loopback that up.sh starts and test.sh reuses (never restarted while it runs from the
# same settings). Sourced by up.sh, test.sh and down.sh after e2e/controlplane/lib.sh.

POSTGRES_VERSION="${POSTGRES_VERSION:-15}"
POSTGRES_PORT="${POSTGRES_PORT:-15432}"
postgres_bin="/usr/lib/postgresql/$POSTGRES_VERSION/bin"
# PostgreSQL refuses to run as root; as root it runs as Debian's `postgres` account, which cannot
# enter root's home, so its data lives outside the cache (it holds test ledgers only).
if [[ "$(id -u)" == 0 ]]; then
  postgres_as=(runuser -u postgres --)
  postgres_dir="${COMMONS_POSTGRES_DIR:-/var/tmp/commons-postgres}"
else
  postgres_as=()
  postgres_dir="${COMMONS_POSTGRES_DIR:-$COMMONS_CACHE/postgres}"
fi
# The URL of the database the end-to-end tests use (each test makes its own databases beside it).
export COMMONS_E2E_POSTGRES="postgres://postgres@127.0.0.1:$POSTGRES_PORT/commons_e2e"

postgres_install() {
  [[ -x "$postgres_bin/initdb" ]] && return 0
  step "installing PostgreSQL $POSTGRES_VERSION (Debian's package)"
  local log="$COMMONS_CACHE/logs/postgres-install.log"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "postgresql-$POSTGRES_VERSION"; } >"$log" 2>&1 \
    || fail "installing postgresql-$POSTGRES_VERSION (apt-get; as root)" "$log"
}

postgres_running() {
  "${postgres_as[@]}" "$postgres_bin/pg_ctl" -D "$postgres_dir/data" status >/dev/null 2>&1 \
    && "$postgres_bin/pg_isready" -q -h 127.0.0.1 -p "$POSTGRES_PORT" -U postgres -d postgres
}

postgres_up() {
  postgres_install
  step "starting PostgreSQL $POSTGRES_VERSION on 127.0.0.1:$POSTGRES_PORT (the ledger's production store)"
  mkdir -p "$postgres_dir" "$cluster_pids"
  [[ "$(id -u)" == 0 ]] && chown postgres: "$postgres_dir"
  if [[ ! -f "$postgres_dir/data/PG_VERSION" ]]; then
    (cd / && "${postgres_as[@]}" "$postgres_bin/initdb" -D "$postgres_dir/data" -U postgres -A trust -E UTF8 --no-locale) \
      >"$COMMONS_CACHE/logs/postgres-initdb.log" 2>&1 || fail "initdb" "$COMMONS_CACHE/logs/postgres-initdb.log"
  fi
  if postgres_running; then
    ok "PostgreSQL is already running (pid $(head -n 1 "$postgres_dir/data/postmaster.pid"))"
  else
    # Loopback only, trust authentication (test data only), the socket beside the data.
    (cd / && "${postgres_as[@]}" "$postgres_bin/pg_ctl" -D "$postgres_dir/data" -l "$postgres_dir/server.log" -w -t 60 start \
      -o "-c listen_addresses=127.0.0.1 -p $POSTGRES_PORT -k $postgres_dir -c max_connections=200") >/dev/null 2>&1 \
      || fail "starting PostgreSQL" "$postgres_dir/server.log"
    ok "PostgreSQL is running (pid $(head -n 1 "$postgres_dir/data/postmaster.pid"), log $postgres_dir/server.log)"
  fi
  head -n 1 "$postgres_dir/data/postmaster.pid" >"$cluster_pids/postgres.pid"
  if ! "$postgres_bin/psql" -h 127.0.0.1 -p "$POSTGRES_PORT" -U postgres -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'commons_e2e'" | grep -q 1; then
    "$postgres_bin/createdb" -h 127.0.0.1 -p "$POSTGRES_PORT" -U postgres commons_e2e
  fi
}

postgres_down() {
  [[ -f "$postgres_dir/data/PG_VERSION" ]] || return 0
  if postgres_running; then
    step "stopping PostgreSQL"
    (cd / && "${postgres_as[@]}" "$postgres_bin/pg_ctl" -D "$postgres_dir/data" -m fast -w stop) >/dev/null 2>&1 || true
  fi
  rm -f "$cluster_pids/postgres.pid"
}
