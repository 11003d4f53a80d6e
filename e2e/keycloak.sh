#!/usr/bin/env bash
# The OpenID Connect provider the REST API's tests get their tokens from: Keycloak's server
# distribution from Maven Central (org.keycloak:keycloak-quarkus-dist, checked against its
# published SHA-1), run on loopback by the machine's Java 21+ (Temurin 25), with the realm in
# e2e/keycloak/commons-realm.json imported at its first start: the example organisations as groups,
# the roles as groups, test users, and a client scope whose mappers put `sub`, `groups` (full
# paths) and the audience `commons-api` in access tokens. up.sh starts it and test.sh reuses it
# (restarted only when the version or the realm changes). Sourced after e2e/controlplane/lib.sh.

KEYCLOAK_VERSION="${KEYCLOAK_VERSION:-26.5.6}"
KEYCLOAK_PORT="${KEYCLOAK_PORT:-18180}"
KEYCLOAK_MANAGEMENT_PORT="${KEYCLOAK_MANAGEMENT_PORT:-18190}"
keycloak_home="$COMMONS_CACHE/keycloak-$KEYCLOAK_VERSION"
keycloak_realm="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/keycloak/commons-realm.json"
# The issuer the tests and the API trust.
export COMMONS_E2E_OIDC_ISSUER="http://127.0.0.1:$KEYCLOAK_PORT/realms/commons"

keycloak_java() {
  local candidate
  for candidate in "${KEYCLOAK_JAVA_HOME:-}" /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/temurin-21-jdk-amd64 "${JAVA_HOME:-}"; do
    [[ -n "$candidate" && -x "$candidate/bin/java" ]] || continue
    local major
    major="$("$candidate/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p')"
    if [[ -n "$major" ]] && ((major >= 21)); then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

keycloak_install() {
  [[ -x "$keycloak_home/bin/kc.sh" ]] && return 0
  step "installing Keycloak $KEYCLOAK_VERSION (Maven Central: org.keycloak:keycloak-quarkus-dist)"
  local base="https://repo1.maven.org/maven2/org/keycloak/keycloak-quarkus-dist/$KEYCLOAK_VERSION"
  local archive="$COMMONS_CACHE/downloads/keycloak-quarkus-dist-$KEYCLOAK_VERSION.tar.gz" want got
  mkdir -p "$COMMONS_CACHE/downloads"
  curl -fsSL -o "$archive.part" "$base/keycloak-quarkus-dist-$KEYCLOAK_VERSION.tar.gz" \
    || fail "downloading Keycloak $KEYCLOAK_VERSION from Maven Central"
  want="$(curl -fsSL "$base/keycloak-quarkus-dist-$KEYCLOAK_VERSION.tar.gz.sha1" | cut -c1-40)" \
    || fail "downloading Keycloak's checksum"
  got="$(sha1sum "$archive.part" | cut -c1-40)"
  [[ "$want" == "$got" ]] || fail "Keycloak's archive does not match its published SHA-1 ($got, want $want)"
  mv "$archive.part" "$archive"
  rm -rf "$keycloak_home.part" && mkdir -p "$keycloak_home.part"
  tar -xzf "$archive" -C "$keycloak_home.part" --strip-components=1 || fail "unpacking Keycloak"
  mv "$keycloak_home.part" "$keycloak_home"
}

# The pid of our Keycloak when it runs (a reused pid is never mistaken: its command line names
# this Keycloak's home).
keycloak_pid() {
  local pid
  [[ -f "$cluster_pids/keycloak.pid" ]] || return 1
  pid="$(<"$cluster_pids/keycloak.pid")"
  [[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$keycloak_home" || return 1
  echo "$pid"
}

keycloak_ready() {
  curl -fsS "$COMMONS_E2E_OIDC_ISSUER/.well-known/openid-configuration" >/dev/null
}

keycloak_down() {
  local pid i
  if pid="$(keycloak_pid)"; then
    step "stopping Keycloak"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do
      alive "$pid" || break
      sleep 0.1
    done
    alive "$pid" && kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$cluster_pids/keycloak.pid"
}

keycloak_up() {
  local java inputs log="$COMMONS_CLUSTER_DIR/logs/keycloak.log" pid
  java="$(keycloak_java)" || fail "Keycloak needs Java 21 or newer (set KEYCLOAK_JAVA_HOME)"
  keycloak_install
  mkdir -p "$cluster_pids" "$COMMONS_CLUSTER_DIR/logs"
  inputs="$KEYCLOAK_VERSION $KEYCLOAK_PORT $(sha256sum "$keycloak_realm" | cut -c1-64)"
  if pid="$(keycloak_pid)"; then
    if [[ "$(cat "$cluster_pids/keycloak.inputs" 2>/dev/null)" == "$inputs" ]] && keycloak_ready; then
      ok "Keycloak is already running (pid $pid, $COMMONS_E2E_OIDC_ISSUER)"
      return 0
    fi
    note "Keycloak runs with another version or realm: restarting it"
    keycloak_down
  fi
  step "starting Keycloak $KEYCLOAK_VERSION on 127.0.0.1:$KEYCLOAK_PORT (the OIDC provider; realm commons)"
  # A fresh store each start, the realm imported from the repository's file: what the tests see is
  # always what is committed.
  rm -rf "$keycloak_home/data"
  mkdir -p "$keycloak_home/data/import"
  cp "$keycloak_realm" "$keycloak_home/data/import/commons-realm.json"
  (
    cd "$keycloak_home"
    JAVA_HOME="$java" nohup "$keycloak_home/bin/kc.sh" start-dev \
      --http-host=127.0.0.1 --http-port="$KEYCLOAK_PORT" \
      --http-management-port="$KEYCLOAK_MANAGEMENT_PORT" --health-enabled=true \
      --import-realm >"$log" 2>&1 &
    echo $! >"$cluster_pids/keycloak.pid"
  )
  echo "$inputs" >"$cluster_pids/keycloak.inputs"
  wait_until 180 "Keycloak serves the realm" keycloak_ready || fail "starting Keycloak" "$log"
  ok "Keycloak is running (pid $(<"$cluster_pids/keycloak.pid"), log $log)"
}
