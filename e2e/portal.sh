#!/usr/bin/env bash
# What the portal is served and tested with, installed by the project itself: GOV.UK Frontend,
# playwright-core and axe-core from npm (the versions in e2e/portal/package-lock.json, installed
# with `npm ci` under $COMMONS_CACHE and linked as e2e/portal/node_modules), and Debian's
# Chromium (the browser tests drive it headless; Playwright's own browser download is never
# used). Sourced after e2e/controlplane/lib.sh.

portal_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/portal"
# GOV.UK Frontend's compiled files, which commons serves under /portal/govuk.
export COMMONS_PORTAL_ASSETS="${COMMONS_PORTAL_ASSETS:-$portal_dir/node_modules/govuk-frontend/dist/govuk}"
export COMMONS_PORTAL_CHROMIUM="${COMMONS_PORTAL_CHROMIUM:-/usr/bin/chromium}"

# portal_npm_install: the locked packages, once per lock file.
portal_npm_install() {
  local lock_hash target log="$COMMONS_CACHE/logs/portal-npm.log"
  lock_hash="$(cat "$portal_dir/package.json" "$portal_dir/package-lock.json" | sha256sum | cut -c1-16)"
  target="$COMMONS_CACHE/portal-npm-$lock_hash"
  mkdir -p "$COMMONS_CACHE/logs"
  if [[ ! -f "$target/node_modules/govuk-frontend/dist/govuk/govuk-frontend.min.css" ]]; then
    step "installing GOV.UK Frontend, playwright-core and axe-core from npm (once per lock file)"
    rm -rf "$target.part" && mkdir -p "$target.part"
    cp "$portal_dir/package.json" "$portal_dir/package-lock.json" "$target.part/"
    (cd "$target.part" && npm ci --no-audit --no-fund --ignore-scripts) >"$log" 2>&1 \
      || { rm -rf "$target.part"; fail "installing the portal's npm packages" "$log"; }
    rm -rf "$target" && mv "$target.part" "$target"
  fi
  ln -sfn "$target/node_modules" "$portal_dir/node_modules"
}

# portal_chromium_install: Debian's Chromium, for the browser tests.
portal_chromium_install() {
  [[ -x "$COMMONS_PORTAL_CHROMIUM" ]] && return 0
  local log="$COMMONS_CACHE/logs/portal-chromium.log" sudo=()
  ((EUID == 0)) || sudo=(sudo -n)
  step "installing Debian's Chromium (for the portal's browser tests)"
  { "${sudo[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq chromium; } \
    >"$log" 2>&1 || fail "installing Debian's chromium package" "$log"
  [[ -x "$COMMONS_PORTAL_CHROMIUM" ]] || fail "chromium is installed but $COMMONS_PORTAL_CHROMIUM is missing" "$log"
}
