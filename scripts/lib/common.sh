# Shared by scripts/*: cache locations outside the repo, so a fresh clone reuses builds.
# Source it; it defines ROOT and CACHE and exports CARGO_TARGET_DIR.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${EKS_REAPER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/eks-reaper}"
export EKS_REAPER_CACHE="$CACHE"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
mkdir -p "$CACHE"

# Prints the path of a venv holding the pinned requirements file $1 (default: the project
# venv of testbed/requirements.txt), created on first use, keyed by the file's name and hash.
venv() {
  local req="${1:-$ROOT/testbed/requirements.txt}" key dir
  key="$(sha256sum "$req" | cut -c1-16)"
  dir="$CACHE/venv-$key"
  [[ "$req" == "$ROOT/testbed/requirements.txt" ]] || dir="$CACHE/venv-$(basename "$req" .txt)-$key"
  if [[ ! -x "$dir/bin/python" || ! -f "$dir/.complete" ]]; then
    rm -rf "$dir"
    python3 -m venv "$dir" >&2
    "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
    touch "$dir/.complete"
  fi
  echo "$dir"
}
