#!/usr/bin/env bash
# Regenerates go.mod's staging replaces from k8s.io/kubernetes' own go.mod, so the list
# (33 modules in 1.37) is derived, never copied. Run after changing KUBE_VERSION.
set -euo pipefail
cd "$(dirname "$0")"
KUBE_VERSION="${KUBE_VERSION:-v1.37.2}"
STAGING_VERSION="v0.${KUBE_VERSION#v1.}"
gomod="$(go mod download -json "k8s.io/kubernetes@${KUBE_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
for m in $(grep -oE '^\s*k8s.io/[a-z0-9-]+ => ./staging/src/' "$gomod" | awk '{print $1}'); do
  go mod edit -replace "${m}=${m}@${STAGING_VERSION}"
done
go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@${KUBE_VERSION}" \
  "k8s.io/kubernetes/cmd/kube-controller-manager@${KUBE_VERSION}"
# etcd at the version Kubernetes itself selects (same module graph).
etcd_version="$(awk '$1=="go.etcd.io/etcd/server/v3"{print $2}' "$gomod")"
go get -tool "go.etcd.io/etcd/server/v3@${etcd_version}"
go mod tidy
