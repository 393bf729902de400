#!/usr/bin/env bash
# Builds AWS's Lambda Runtime Interface Emulator (the real Runtime API server that Lambda
# container images ship) into a cache outside the repo. Prints the binary's path.
set -euo pipefail
cd "$(dirname "$0")"
key="$(sha256sum go.sum go.mod | sha256sum | cut -c1-16)"
out="${EKS_REAPER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/eks-reaper}/lambda-rie/${key}/aws-lambda-rie"
if [[ ! -x "$out" ]]; then
  mkdir -p "$(dirname "$out")"
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out.tmp" \
    github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie >&2
  mv "$out.tmp" "$out"
fi
echo "$out"
