#!/usr/bin/env bash
# Take Argo CD's own Application and ApplicationSet CRDs from its Go module, for the tests that
# run gitops-receiver's Argo CD support against a real API server. Nothing here is committed:
# the module is downloaded into the Go module cache (about 200 MB, once) and the two manifests
# are copied to the cache folder:
#   ${GITOPS_RECEIVER_CACHE:-${XDG_CACHE_HOME:-~/.cache}/gitops-receiver}/argocd/crds-<version>/
#     application-crd.yaml  applicationset-crd.yaml
# Usage: scripts/fetch-argocd-crds.sh [VERSION]   (default v3.5.7); prints the folder last.
# A lock makes concurrent runs wait for one download.
set -euo pipefail

VERSION="${1:-v3.5.7}"
MODULE="github.com/argoproj/argo-cd/v3"
ROOT="${GITOPS_RECEIVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gitops-receiver}"
DEST="$ROOT/argocd/crds-$VERSION"
FILES=(application-crd.yaml applicationset-crd.yaml)

fetched() {
  local file
  for file in "${FILES[@]}"; do [[ -s "$DEST/$file" ]] || return 1; done
}

if fetched; then
  echo "$DEST"
  exit 0
fi
command -v go >/dev/null || { echo "fetch-argocd-crds: no Go toolchain on PATH" >&2; exit 3; }

mkdir -p "$ROOT/argocd"
exec 9>"$ROOT/argocd/.fetch.lock"
flock 9
if fetched; then  # another run finished while we waited
  echo "$DEST"
  exit 0
fi

export GOTOOLCHAIN=local GOFLAGS="-mod=mod"
echo "fetch-argocd-crds: downloading $MODULE@$VERSION from the Go module proxy (about 200 MB, once)" >&2
work="$(mktemp -d -t argocd-crds-XXXXXX)"
trap 'rm -rf "$work"' EXIT
# Outside any module, so no go.mod of ours is read or changed.
dir="$(cd "$work" && go mod download -json "$MODULE@$VERSION" \
  | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[[ -n "$dir" && -d "$dir/manifests/crds" ]] || {
  echo "fetch-argocd-crds: download of $MODULE@$VERSION failed" >&2
  exit 1
}
mkdir -p "$work/out"
for file in "${FILES[@]}"; do
  cp "$dir/manifests/crds/$file" "$work/out/$file"
done
rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
mv "$work/out" "$DEST"
chmod -R u+w "$DEST"
echo "fetch-argocd-crds: copied ${FILES[*]} into $DEST" >&2
echo "$DEST"
