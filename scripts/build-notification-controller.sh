#!/usr/bin/env bash
# Build Flux's notification-controller from its Go module with the machine's Go, for the
# reference row (b) of benchmarks/webhook_throughput.py. Nothing here is committed: the source
# is taken from the Go module cache into a temp folder, and the binary and the controller's own
# CRDs go to the cache folder:
#   ${GITOPS_RECEIVER_CACHE:-${XDG_CACHE_HOME:-~/.cache}/gitops-receiver}/flux/
#     notification-controller-<version>   the binary
#     crds-<version>/*.yaml                Alert, Provider, Receiver CRDs of that version
# Usage: scripts/build-notification-controller.sh [VERSION]   (default v1.9.0)
#
# Why v1.9.0: it is the newest release the module proxy serves here whose go.mod asks for
# Go <= 1.26 (GOTOOLCHAIN=local). The checksum database has no entry for the root module at
# that version, so GONOSUMDB names that one module (its dependencies are still verified).
# The module's `replace .../api => ./api` is dropped: the api module is not in the root
# module's zip, so the published api module of the same version is used instead.
set -euo pipefail

VERSION="${1:-v1.9.0}"
MODULE="github.com/fluxcd/notification-controller"
ROOT="${GITOPS_RECEIVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gitops-receiver}"
DEST="$ROOT/flux"
BINARY="$DEST/notification-controller-$VERSION"
CRDS="$DEST/crds-$VERSION"

if [[ -x "$BINARY" && -d "$CRDS" ]]; then
  echo "build-notification-controller: $BINARY already built"
  exit 0
fi
command -v go >/dev/null || { echo "build-notification-controller: no Go toolchain" >&2; exit 1; }

export GOTOOLCHAIN=local
export GONOSUMDB="$MODULE"
export GOFLAGS="-mod=mod -buildvcs=false"

work="$(mktemp -d -t notification-controller-build-XXXXXX)"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

echo "build-notification-controller: downloading $MODULE@$VERSION"
dir="$(go mod download -json "$MODULE@$VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[[ -n "$dir" && -d "$dir" ]] || { echo "build-notification-controller: download failed" >&2; exit 1; }

cp -r "$dir" "$work/src"
chmod -R u+w "$work/src"
cd "$work/src"
go mod edit -dropreplace="$MODULE/api"
go mod edit -require="$MODULE/api@$VERSION"

echo "build-notification-controller: building (several minutes on 2 cores)"
mkdir -p "$DEST" "$CRDS"
CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$BINARY.tmp" .
mv "$BINARY.tmp" "$BINARY"
cp config/crd/bases/*.yaml "$CRDS/"
echo "build-notification-controller: built $BINARY"
