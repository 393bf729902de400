#!/usr/bin/env bash
# Writes the Go module that builds one Kubernetes version's control plane: go.mod's staging
# replaces come from k8s.io/kubernetes' own go.mod (31 modules in 1.32, 33 in 1.36/1.37),
# so the list is derived, never copied; etcd is the version that same go.mod selects.
#
#   sync-staging.sh [VERSION [DIR]]   VERSION default: the one in ./go.mod; DIR default: .
#
# build.sh runs it for a version that has no module yet (versions/<VERSION>/); commit the
# result (go.mod + go.sum) so the next build is the same one.
set -euo pipefail
cd "$(dirname "$0")"
KUBE_VERSION="${1:-$(awk '$1=="k8s.io/kubernetes"{print $2}' go.mod)}"
DIR="${2:-.}"
STAGING_VERSION="v0.${KUBE_VERSION#v1.}"
gomod="$(go mod download -json "k8s.io/kubernetes@${KUBE_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
[[ -n "$gomod" ]] || { echo "sync-staging: k8s.io/kubernetes@${KUBE_VERSION} not found" >&2; exit 1; }
mkdir -p "$DIR"
cd "$DIR"
if [[ ! -f go.mod ]]; then
  # `tool` directives need go >= 1.24; Kubernetes' own `go` line is the floor otherwise.
  # Its `godebug` lines keep the runtime defaults of the official build of that release
  # (1.32 says default=go1.23) when a newer Go compiles it.
  want="$(awk '$1=="go"{print $2}' "$gomod")"
  go_line="$(printf '%s\n%s\n' "$want" 1.24.0 | sort -V | tail -1)"
  rel=""; [[ "$DIR" == . ]] || rel="${DIR#./}"
  { echo "module github.com/eks-reaper/eks-reaper/testbed/controlplane${rel:+/$rel}"
    echo
    echo "go ${go_line}"
    grep -E '^godebug ' "$gomod" || true
  } >go.mod
fi
# Same patch for root and staging. The module proxy this machine reaches does not serve
# every staging module at every patch (1.32.13: no k8s.io/endpointslice v0.32.13): then
# the newest earlier patch of the same minor stands in, and the build says so. Staging
# modules are tagged at every release whether their code changed or not; check the two
# tags' diff before trusting a stand-in (endpointslice v0.32.12 -> v0.32.13: go.mod/go.sum
# only).
minor="${STAGING_VERSION%.*}"
for m in $(grep -oE '^\s*k8s.io/[a-z0-9-]+ => ./staging/src/' "$gomod" | awk '{print $1}'); do
  v="$STAGING_VERSION"
  served="$(go list -m -versions "$m" 2>/dev/null | tr ' ' '\n' | grep -E "^${minor//./\\.}\.[0-9]+$" || true)"
  if [[ -n "$served" ]] && ! grep -qx "$v" <<<"$served"; then
    older="$(printf '%s\n%s\n' "$served" "$v" | sort -V | grep -B1 -x "$v" | head -1)"
    if [[ -n "$older" && "$older" != "$v" ]]; then
      echo "sync-staging: ${m}@${v} is not served; using ${older} (only matters if the build imports it)" >&2
      v="$older"
    fi
  fi
  go mod edit -replace "${m}=${m}@${v}"
done
go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@${KUBE_VERSION}" \
  "k8s.io/kubernetes/cmd/kube-controller-manager@${KUBE_VERSION}"
etcd_version="$(awk '$1=="go.etcd.io/etcd/server/v3"{print $2}' "$gomod")"
go get -tool "go.etcd.io/etcd/server/v3@${etcd_version}"
go mod tidy
