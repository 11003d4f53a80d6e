#!/usr/bin/env bash
# Property-based tests of the REST API from its own OpenAPI document: schemathesis (from PyPI, in
# a virtualenv under $COMMONS_CACHE) generates requests for every operation, against the running
# commons, the real control plane, the real ledger. Sourced by test.sh after e2e/commons.sh.
#
# It signs in with an API key of the role `requester` for an organisation with no tenancies: every
# route is exercised (reads, refused writes, validation), and nothing it sends can create a tenancy
# (a request names its organisation, and this key acts for none that the generated bodies name).

SCHEMATHESIS_VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"
SCHEMATHESIS_VENV="$COMMONS_CACHE/venv-schemathesis-$SCHEMATHESIS_VERSION"
# Requests per operation at most (operations with few inputs run out sooner); over 5,000 in all
# (the figure is checked below).
SCHEMATHESIS_EXAMPLES="${SCHEMATHESIS_EXAMPLES:-500}"

# schemathesis_install: the pinned version, once.
schemathesis_install() {
  if [[ -x "$SCHEMATHESIS_VENV/bin/st" ]]; then
    return
  fi
  step "installing schemathesis $SCHEMATHESIS_VERSION from PyPI (once)"
  python3 -m venv "$SCHEMATHESIS_VENV" >"$COMMONS_CACHE/logs/schemathesis-install.log" 2>&1 \
    && "$SCHEMATHESIS_VENV/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION" >>"$COMMONS_CACHE/logs/schemathesis-install.log" 2>&1 \
    || { rm -rf "$SCHEMATHESIS_VENV"; fail "installing schemathesis" "$COMMONS_CACHE/logs/schemathesis-install.log"; }
}

# schemathesis_run: every operation of /v1/openapi.json; fails on a 5xx, an undocumented status,
# content type or header, a body that breaks its schema, or fewer than 5,000 requests.
schemathesis_run() {
  schemathesis_install
  step "schemathesis against /v1/openapi.json ($SCHEMATHESIS_EXAMPLES examples per operation)"
  local out="$COMMONS_CACHE/logs/schemathesis.log" key id
  key="$("$COMMONS_BIN" apikey create --organisation schemathesis-fuzz --role requester --expires 1h \
    --description "schemathesis (e2e/test.sh)" --by test.sh --ledger "$COMMONS_LEDGER" | head -n 1)"
  id="${key#cmk_}"; id="${id%%_*}"
  local status=0
  (cd "$COMMONS_CACHE" && "$SCHEMATHESIS_VENV/bin/st" run "http://$COMMONS_LISTEN/v1/openapi.json" \
    -H "Authorization: Bearer $key" -n "$SCHEMATHESIS_EXAMPLES" --seed 20261202 --no-color \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,unsupported_method \
    --report junit --report-dir "$COMMONS_CACHE/logs/schemathesis-report") >"$out" 2>&1 || status=$?
  "$COMMONS_BIN" apikey revoke "$id" --by test.sh --ledger "$COMMONS_LEDGER" >/dev/null 2>&1 || true
  local generated passed
  generated="$(grep -oE '[0-9]+ generated' "$out" | tail -n 1 | grep -oE '[0-9]+' || echo 0)"
  passed="$(grep -oE '[0-9]+ passed' "$out" | tail -n 1 | grep -oE '[0-9]+' || echo 0)"
  if (( status != 0 )); then
    tail -n 60 "$out"
    fail "schemathesis found failures" "$out"
  fi
  if (( generated < 5000 )); then
    tail -n 20 "$out"
    fail "schemathesis generated only $generated requests (at least 5,000 are wanted)" "$out"
  fi
  ok "schemathesis: $generated requests generated, $passed passed, no failures"
}
