#!/usr/bin/env bash
# Builds the local control plane's binaries from the Go module proxy into versioned directories
# under $COMMONS_CACHE/bin, once: a component is rebuilt only when its pinned version or wrapper
# module changes. `--print-path` prints the PATH fragment of every bin directory.
set -euo pipefail
# shellcheck source=e2e/controlplane/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

if [[ "${1:-}" == "--print-path" ]]; then
  echo "$controlplane_path"
  exit 0
fi

command -v go >/dev/null || fail "finding Go (the control plane is built from Go modules; install Go 1.26 or newer)"

# key COMPONENT-SPECIFIC-STRINGS...: what a build depends on; a changed key means a rebuild.
key() { printf '%s\n' "$@" | sha256sum | cut -d' ' -f1; }
wrapper_hash() { cat "$controlplane_dir/$1/go.mod" "$controlplane_dir/$1/go.sum" | sha256sum | cut -d' ' -f1; }

# built DIR KEY: true when DIR holds a finished build for KEY.
built() { [[ -f "$1/.complete" && "$(cat "$1/.complete")" == "$2" ]]; }

# module_time DIR MODULE: the release time of MODULE as resolved in wrapper module DIR (RFC 3339),
# so buildDate is the same on every machine.
module_time() {
  local t
  t="$(cd "$1" && go list -m -f '{{.Time}}' "$2")"
  date -u -d "${t% UTC}" +%Y-%m-%dT%H:%M:%SZ
}

build_kubernetes() {
  local dir="$k8s_bin_dir" k
  k="$(key "$KUBERNETES_VERSION" "$(wrapper_hash kubernetes)")"
  if built "$dir" "$k"; then ok "kubernetes $KUBERNETES_VERSION (cached)"; return; fi
  step "building kube-apiserver, kube-controller-manager, kube-scheduler, kubectl $KUBERNETES_VERSION (first time: about 10 minutes on 2 cores)"
  local log="$COMMONS_CACHE/logs/build-kubernetes.log" minor date ld="-s -w" p
  minor="$(echo "$KUBERNETES_VERSION" | cut -d. -f2)"
  mkdir -p "$dir"
  rm -f "$dir/.complete"
  {
    date="$(module_time "$controlplane_dir/kubernetes" k8s.io/kubernetes)"
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld+=" -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=$date"
    done
    cd "$controlplane_dir/kubernetes"
    go build -trimpath -ldflags "$ld" -o "$dir/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
  } >"$log" 2>&1 || fail "building kubernetes $KUBERNETES_VERSION" "$log"
  echo "$k" >"$dir/.complete"
  ok "kubernetes $KUBERNETES_VERSION"
}

build_etcd() {
  local dir="$etcd_bin_dir" k
  k="$(key "$ETCD_VERSION" "$(wrapper_hash etcd)")"
  if built "$dir" "$k"; then ok "etcd $ETCD_VERSION (cached)"; return; fi
  step "building etcd $ETCD_VERSION (first time: about 2 minutes)"
  local log="$COMMONS_CACHE/logs/build-etcd.log"
  mkdir -p "$dir"
  rm -f "$dir/.complete"
  (cd "$controlplane_dir/etcd" && go build -trimpath -ldflags "-s -w" -o "$dir/etcd" .) >"$log" 2>&1 \
    || fail "building etcd $ETCD_VERSION" "$log"
  echo "$k" >"$dir/.complete"
  ok "etcd $ETCD_VERSION"
}

# build_module NAME VERSION PACKAGE LDFLAGS: `go install PACKAGE@VERSION` into the versioned dir.
build_module() {
  local name="$1" version="$2" pkg="$3" ld="$4" dir="$COMMONS_CACHE/bin/$1-$2" k
  k="$(key "$version" "$pkg" "$ld")"
  if built "$dir" "$k"; then ok "$name $version (cached)"; return; fi
  step "building $name $version (first time: a few minutes)"
  local log="$COMMONS_CACHE/logs/build-$name.log"
  mkdir -p "$dir"
  rm -f "$dir/.complete"
  GOBIN="$dir" go install -trimpath -ldflags "$ld" "$pkg@$version" >"$log" 2>&1 || fail "building $name $version" "$log"
  echo "$k" >"$dir/.complete"
  ok "$name $version"
}

build_kubernetes
build_etcd
build_module kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok \
  "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v} -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${KUBERNETES_VERSION#v}"
# kwok simulates nothing without Stage definitions: assemble its default ones (fast node start,
# node heartbeat with lease, the general pod lifecycle) from the same module release.
kwok_stages() {
  local out="$kwok_bin_dir/stages.yaml" moddir f
  [[ -s "$out" ]] && return 0
  moddir="$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [[ -d "$moddir/kustomize/stage" ]] || fail "finding kwok's stage definitions in the module cache"
  for f in "$moddir"/kustomize/stage/node/fast/*.yaml "$moddir"/kustomize/stage/node/heartbeat-with-lease/*.yaml \
    "$moddir"/kustomize/stage/pod/general/*.yaml; do
    [[ "$(basename "$f")" == kustomization.yaml ]] && continue
    printf -- '---\n'
    cat "$f"
  done >"$out.tmp"
  mv "$out.tmp" "$out"
}
kwok_stages

build_module helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm \
  "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$HELM_K8S_MINOR -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$HELM_K8S_MINOR"
