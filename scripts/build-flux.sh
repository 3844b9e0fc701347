#!/usr/bin/env bash
# Builds the Flux test bed once, from the Go module proxy with the machine's Go, into a cache
# folder outside the repository: source-controller, kustomize-controller, notification-controller,
# the flux CLI, and the real CRDs of those modules (plus helm-controller's HelmRelease CRD).
# Usage: scripts/build-flux.sh [DEST]; prints one "building" line on stderr and the folder on its
# last stdout line. Go's own output goes to DEST/build.log (its tail is shown on failure).
# A lock makes concurrent runs wait for one build. Nothing built here is committed.
#
# DEST (default ${GITOPS_RECEIVER_CACHE:-~/.cache/gitops-receiver}/flux/<flux CLI version>):
#   source-controller kustomize-controller notification-controller flux   the binaries
#   crds/*.yaml                                                            the real CRDs
#   versions                                                               what was built
#
# Why these versions: they are the newest releases whose go.mod asks for Go <= 1.26 that the
# proxy serves here (the controllers' v1.10.x declare go 1.27). Tricks, each needed here:
# - each controller's `replace <module>/api => ./api` is dropped (the api module is not in the
#   root module's zip) and the published api module of the same version required instead;
# - source-controller v1.9.6 wants github.com/fluxcd/pkg/artifact v0.18.3, which the proxy
#   refuses; v0.18.1 builds and runs;
# - the flux CLI embeds cmd/flux/manifests/*.yaml, made by its repository's make and absent from
#   the module zip: one placeholder yaml satisfies go:embed (only `flux install` needs them);
# - the checksum database lacks some of these root modules, so GONOSUMDB names those modules
#   alone (their dependencies are still verified).
# No image-reflector/automation controller release is served here: no image CRDs (see README).
set -euo pipefail

FLUX_VERSION="${FLUX_VERSION:-v2.9.5}"
SOURCE_VERSION="${SOURCE_VERSION:-v1.9.6}"
KUSTOMIZE_VERSION="${KUSTOMIZE_VERSION:-v1.9.6}"
NOTIFICATION_VERSION="${NOTIFICATION_VERSION:-v1.9.0}"
HELM_VERSION="${HELM_VERSION:-v1.6.4}"
ARTIFACT_PIN="v0.18.1"
CACHE_ROOT="${GITOPS_RECEIVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gitops-receiver}"
DEST="${1:-$CACHE_ROOT/flux/$FLUX_VERSION}"
WANT="flux=$FLUX_VERSION source-controller=$SOURCE_VERSION kustomize-controller=$KUSTOMIZE_VERSION notification-controller=$NOTIFICATION_VERSION helm-controller-crds=$HELM_VERSION"

built() {
  [[ -f "$DEST/versions" && "$(cat "$DEST/versions")" == "$WANT" ]]
}

if built; then
  echo "$DEST"
  exit 0
fi
command -v go >/dev/null || { echo "build-flux: no Go toolchain on PATH" >&2; exit 3; }

mkdir -p "$DEST"
exec 9>"$DEST/.build.lock"
flock 9
if built; then  # another run finished the build while we waited
  echo "$DEST"
  exit 0
fi

export GOTOOLCHAIN=local GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
export GONOSUMDB="github.com/fluxcd/source-controller,github.com/fluxcd/kustomize-controller,github.com/fluxcd/notification-controller,github.com/fluxcd/helm-controller,github.com/fluxcd/flux2/v2"
LOG="$DEST/build.log"
echo "build-flux: building source-controller $SOURCE_VERSION, kustomize-controller $KUSTOMIZE_VERSION, notification-controller $NOTIFICATION_VERSION and flux $FLUX_VERSION into $DEST with $(go env GOVERSION) (about 12 minutes on 2 cores, once; log: $LOG)" >&2
WORK="$(mktemp -d)"
trap 'chmod -R u+w "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT
trap 'echo "build-flux: failed; last lines of $LOG:" >&2; tail -n 30 "$LOG" >&2' ERR
: >"$LOG"
rm -f "$DEST/versions"
mkdir -p "$DEST/crds.tmp"

# Copies module@version out of the module cache into $WORK/<name> (writable) and prints the path.
unpack() {
  local module="$1" version="$2" name="$3" dir
  dir="$(go mod download -json "$module@$version" 2>>"$LOG" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [[ -n "$dir" && -d "$dir" ]] || { echo "build-flux: cannot download $module@$version" >>"$LOG"; return 1; }
  cp -r "$dir" "$WORK/$name"
  chmod -R u+w "$WORK/$name"
  echo "$WORK/$name"
}

# Builds one controller: drops the ./api replace, requires the published api module.
build_controller() {
  local name="$1" version="$2" module="github.com/fluxcd/$1" src
  src="$(unpack "$module" "$version" "$name")"
  cd "$src"
  go mod edit -dropreplace="$module/api" -require="$module/api@$version"
  if [[ "$name" == source-controller ]]; then
    go mod edit -replace="github.com/fluxcd/pkg/artifact=github.com/fluxcd/pkg/artifact@$ARTIFACT_PIN"
  fi
  echo "== $name $version" >>"$LOG"
  go build -trimpath -ldflags "-s -w" -o "$DEST/$name.tmp" . >>"$LOG" 2>&1
  cp config/crd/bases/*.yaml "$DEST/crds.tmp/"
}

build_controller source-controller "$SOURCE_VERSION"
build_controller kustomize-controller "$KUSTOMIZE_VERSION"
build_controller notification-controller "$NOTIFICATION_VERSION"

# helm-controller: only its HelmRelease CRD (no test builds a Helm chart).
helm="$(unpack github.com/fluxcd/helm-controller "$HELM_VERSION" helm-controller)"
cp "$helm"/config/crd/bases/*.yaml "$DEST/crds.tmp/"

flux="$(unpack github.com/fluxcd/flux2/v2 "$FLUX_VERSION" flux2)"
cd "$flux"
mkdir -p cmd/flux/manifests
echo "# placeholder: go:embed needs one file; flux install is not used here" >cmd/flux/manifests/placeholder.yaml
echo "== flux $FLUX_VERSION" >>"$LOG"
go build -trimpath -ldflags "-s -w -X main.VERSION=${FLUX_VERSION#v}" -o "$DEST/flux.tmp" ./cmd/flux >>"$LOG" 2>&1

# Move into place last, so a half-finished build never looks complete.
rm -rf "$DEST/crds"
mv "$DEST/crds.tmp" "$DEST/crds"
for binary in source-controller kustomize-controller notification-controller flux; do
  mv "$DEST/$binary.tmp" "$DEST/$binary"
done
echo "$WANT" >"$DEST/versions"
echo "$DEST"
