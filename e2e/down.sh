#!/usr/bin/env bash
# Stops commons, Keycloak, PostgreSQL and the local control plane. `--purge` also deletes the cluster's data.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=e2e/controlplane/lib.sh
source "$here/controlplane/lib.sh"
source "$here/commons.sh"
source "$here/postgres.sh"
source "$here/keycloak.sh"
commons_stop
keycloak_down
postgres_down
[[ "${1:-}" == --purge ]] && rm -rf "$postgres_dir"
"$here/controlplane/down.sh" "$@"
