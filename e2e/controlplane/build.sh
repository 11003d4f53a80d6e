#!/usr/bin/env bash
# Builds the local control plane's binaries from Go modules (never downloads a prebuilt binary)
# into versioned directories under $COMMONS_CACHE/bin:
#   kubernetes-<v>/  kube-apiserver, kube-controller-manager, kube-scheduler, kubectl (kubernetes/)
#   etcd-<v>/        etcd (etcd/)
#   kwok-<v>/        kwok, plus its default stages and RBAC role (go install from its module)
#   helm-<v>/        helm (go install from its module)
# A directory counts as built only with a .complete stamp holding its build key (version, wrapper
# go.mod/go.sum, build recipe): an interrupted build is redone and a changed pin rebuilds.
# Usage: build.sh               build what is missing (about 1 second when nothing is)
#        build.sh --print-path  print the PATH fragment of every bin directory; builds nothing
set -euo pipefail
# shellcheck source=e2e/controlplane/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

case "${1:-}" in
  "") ;;
  --print-path) echo "$controlplane_path" && exit 0 ;;
  -h | --help) sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' && exit 0 ;;
  *) fail "unknown argument '$1' (see --help)" ;;
esac
report_errors

# Bump when the build commands below change: every component is then rebuilt.
recipe=1
# Static binaries, as upstream releases them; no C compiler needed. No toolchain downloads; no
# go.work or VCS stamping from the surrounding repository.
export CGO_ENABLED=0 GOTOOLCHAIN=local GOWORK=off
mkdir -p "$COMMONS_CACHE/bin" "$COMMONS_CACHE/logs"

# key PARTS...: the build key of a component.
key() { printf '%s\n' "recipe=$recipe" "$@" | sha256sum | cut -d' ' -f1; }
# wrapper_hash DIR: hash of a wrapper module's go.mod and go.sum.
wrapper_hash() { cat "$controlplane_dir/$1/go.mod" "$controlplane_dir/$1/go.sum" | sha256sum | cut -d' ' -f1; }
# built DIR KEY: DIR holds a finished build for KEY.
built() { [[ -f "$1/.complete" && "$(<"$1/.complete")" == "$2" ]]; }

# The wrapper modules must pin what versions.env says.
k8s_mod="$controlplane_dir/kubernetes/go.mod"
etcd_mod="$controlplane_dir/etcd/go.mod"
grep -Eq "^[[:space:]]*(require[[:space:]]+)?k8s.io/kubernetes[[:space:]]+$KUBERNETES_VERSION([[:space:]]|$)" "$k8s_mod" \
  || fail "versions.env pins k8s.io/kubernetes $KUBERNETES_VERSION but $k8s_mod requires another version"
if grep -E '=>[[:space:]]*k8s\.io/' "$k8s_mod" | grep -Ev "[[:space:]]$KUBERNETES_STAGING_VERSION([[:space:]]|$)" >&2; then
  fail "$k8s_mod maps the staging modules above to a version other than $KUBERNETES_STAGING_VERSION"
fi
grep -Eq "^[[:space:]]*(require[[:space:]]+)?go\.etcd\.io/etcd/server/v3[[:space:]]+$ETCD_VERSION([[:space:]]|$)" "$etcd_mod" \
  || fail "versions.env pins etcd $ETCD_VERSION but $etcd_mod requires another version"

k8s_key="$(key kubernetes "$KUBERNETES_VERSION" "$(wrapper_hash kubernetes)")"
etcd_key="$(key etcd "$ETCD_VERSION" "$(wrapper_hash etcd)")"
kwok_key="$(key kwok "$KWOK_VERSION" "$KUBERNETES_VERSION")"
helm_key="$(key helm "$HELM_VERSION")"
if built "$k8s_bin_dir" "$k8s_key" && built "$etcd_bin_dir" "$etcd_key" \
  && built "$kwok_bin_dir" "$kwok_key" && built "$helm_bin_dir" "$helm_key"; then
  ok "binaries cached: kubernetes $KUBERNETES_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION, helm $HELM_VERSION"
  exit 0
fi

# One build at a time (up.sh may run from several shells); the others wait, then find it built.
if command -v flock >/dev/null; then
  exec 9>"$COMMONS_CACHE/bin/.build.lock"
  if ! flock -n 9; then
    step "waiting for another build.sh to finish"
    flock 9
  fi
fi

command -v go >/dev/null || fail "finding Go: the control plane is built from Go modules; install Go 1.26 or newer"
go_version="$(go env GOVERSION)"
if [[ "$(printf '%s\n' go1.26 "$go_version" | sort -V | head -n 1)" != go1.26 ]]; then
  fail "checking Go: found $go_version, need go1.26 or newer (toolchain downloads are off: GOTOOLCHAIN=local)"
fi

# start_build DIR: clears DIR's stamp and leftovers of an interrupted build; prints the staging dir.
start_build() {
  mkdir -p "$1"
  rm -rf "$1/.complete" "$1/.build"
  mkdir "$1/.build"
  echo "$1/.build"
}

# finish_build DIR KEY: moves the staged files into DIR (atomically per file, so running
# processes keep their old binary) and writes the stamp last.
finish_build() {
  local f
  for f in "$1/.build"/*; do mv -f "$f" "$1/"; done
  rmdir "$1/.build"
  echo "$2" >"$1/.complete"
}

# run_logged LOG WHAT COMMAND...: runs COMMAND with its output in LOG, saying every two minutes
# that it is still going; fails naming WHAT and LOG.
run_logged() {
  local log="$1" what="$2" pid started=$SECONDS next=120
  shift 2
  "$@" >"$log" 2>&1 &
  pid=$!
  # Interrupted: take the build down too.
  trap 'kill "$pid" 2>/dev/null' EXIT
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if ((SECONDS - started >= next)); then
      printf '    ... still %s (%dm so far)\n' "$what" $(((SECONDS - started) / 60))
      next=$((next + 120))
    fi
  done
  trap - EXIT
  wait "$pid" || fail "$what" "$log"
  ok "$what took $((SECONDS - started))s"
}

# module_dir MODULE@VERSION: the module's directory in the Go module cache (downloaded if needed).
module_dir() {
  (cd "$COMMONS_CACHE" && GOFLAGS='' go mod download -json "$1") \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p'
}

build_kubernetes() {
  if built "$k8s_bin_dir" "$k8s_key"; then ok "kubernetes $KUBERNETES_VERSION (cached)" && return; fi
  step "building kube-apiserver, kube-controller-manager, kube-scheduler, kubectl $KUBERNETES_VERSION (first run: about 10 minutes on 2 cores)" \
    "$COMMONS_CACHE/logs/build-kubernetes.log"
  local out major minor date ld="-s -w" p
  out="$(start_build "$k8s_bin_dir")"
  major="${KUBERNETES_VERSION#v}" && major="${major%%.*}"
  minor="$(echo "$KUBERNETES_VERSION" | cut -d. -f2)"
  # buildDate: the release's publication time from the module proxy, the same on every machine.
  date="$(GOFLAGS=-mod=readonly go list -C "$controlplane_dir/kubernetes" -m \
    -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor"
    ld+=" -X $p.gitTreeState=clean -X $p.buildDate=$date"
  done
  run_logged "$COMMONS_CACHE/logs/build-kubernetes.log" "building kubernetes $KUBERNETES_VERSION" \
    env GOFLAGS="-mod=readonly -buildvcs=false" go build -C "$controlplane_dir/kubernetes" -trimpath \
    -ldflags "$ld" -o "$out/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
  finish_build "$k8s_bin_dir" "$k8s_key"
}

build_etcd() {
  if built "$etcd_bin_dir" "$etcd_key"; then ok "etcd $ETCD_VERSION (cached)" && return; fi
  step "building etcd $ETCD_VERSION (first run: under a minute)" "$COMMONS_CACHE/logs/build-etcd.log"
  local out
  out="$(start_build "$etcd_bin_dir")"
  run_logged "$COMMONS_CACHE/logs/build-etcd.log" "building etcd $ETCD_VERSION" \
    env GOFLAGS="-mod=readonly -buildvcs=false" go build -C "$controlplane_dir/etcd" -trimpath -ldflags "-s -w" \
    -o "$out/etcd" .
  finish_build "$etcd_bin_dir" "$etcd_key"
}

build_kwok() {
  if built "$kwok_bin_dir" "$kwok_key"; then ok "kwok $KWOK_VERSION (cached)" && return; fi
  local out log="$COMMONS_CACHE/logs/build-kwok.log" ld moddir kust f
  step "building kwok $KWOK_VERSION (first run: 1-2 minutes)" "$log"
  out="$(start_build "$kwok_bin_dir")"
  ld="-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}"
  ld+=" -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${KUBERNETES_VERSION#v}"
  run_logged "$log" "building kwok $KWOK_VERSION" \
    env GOFLAGS='' GOBIN="$out" go install -trimpath -ldflags "$ld" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  # kwok simulates nothing without Stage objects: take the defaults kwokctl uses (node-initialize,
  # node heartbeat with lease, pod ready/complete/delete) from the same module release, and its
  # controller's ClusterRole (up.sh binds it to kwok's client certificate).
  moddir="$(module_dir "sigs.k8s.io/kwok@$KWOK_VERSION")"
  [[ -d "$moddir/kustomize/stage" ]] || fail "finding kwok's stage definitions in the Go module cache" "$log"
  for kust in node/fast node/heartbeat-with-lease pod/fast; do
    sed -n 's/^- \([A-Za-z0-9._-]*\.yaml\)$/\1/p' "$moddir/kustomize/stage/$kust/kustomization.yaml" \
      | while read -r f; do
        printf -- '---\n'
        cat "$moddir/kustomize/stage/$kust/$f"
      done
  done >"$out/stages.yaml"
  [[ "$(grep -c '^kind: Stage' "$out/stages.yaml")" -ge 5 ]] || fail "assembling kwok's default stages" "$out/stages.yaml"
  cp "$moddir/kustomize/rbac/role.yaml" "$out/clusterrole.yaml"
  chmod 644 "$out/clusterrole.yaml" "$out/stages.yaml"
  finish_build "$kwok_bin_dir" "$kwok_key"
}

build_helm() {
  if built "$helm_bin_dir" "$helm_key"; then ok "helm $HELM_VERSION (cached)" && return; fi
  local out log="$COMMONS_CACHE/logs/build-helm.log" gomod k8s major minor ld v
  step "building helm $HELM_VERSION (first run: about 2 minutes)" "$log"
  out="$(start_build "$helm_bin_dir")"
  # As helm's Makefile: the Kubernetes version it reports is its client-go version (v0.M.m -> 1.M).
  gomod="$( (cd "$COMMONS_CACHE" && GOFLAGS='' go mod download -json "helm.sh/helm/v3@$HELM_VERSION") \
    | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
  k8s="$(sed -n 's/^[[:space:]]*k8s\.io\/client-go v\([0-9]*\.[0-9]*\)\..*/\1/p' "$gomod" | head -n 1)"
  [[ "$k8s" =~ ^[0-9]+\.[0-9]+$ ]] || fail "reading helm's client-go version from $gomod"
  major=$((${k8s%.*} + 1)) minor="${k8s#*.}"
  ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  ld+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for v in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ld+=" -X $v.k8sVersionMajor=$major -X $v.k8sVersionMinor=$minor"
  done
  run_logged "$log" "building helm $HELM_VERSION" \
    env GOFLAGS='' GOBIN="$out" go install -trimpath -ldflags "$ld" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  finish_build "$helm_bin_dir" "$helm_key"
}

build_kubernetes
build_etcd
build_kwok
build_helm
ok "binaries ready: $controlplane_path"
