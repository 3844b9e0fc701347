#!/usr/bin/env bash
# Builds the test-only kube-apiserver and etcd binaries once, from the Go module proxy, into a
# cache folder outside the repository (the envtest layout: one folder holding both binaries).
# Usage: scripts/build-envtest.sh [DEST]; prints one "building" line on stderr and the folder on
# its last stdout line. Go's own output goes to DEST/build.log (its tail is shown on failure).
# A lock makes concurrent runs wait for one build. Nothing built here is committed.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
STAGING_VERSION="v0${K8S_VERSION#v1}"
CACHE_ROOT="${GITOPS_RECEIVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gitops-receiver}"
DEST="${1:-$CACHE_ROOT/k8s/$K8S_VERSION}"

built() {
  [[ -x "$DEST/kube-apiserver" && -x "$DEST/etcd" ]] &&
    [[ "$("$DEST/kube-apiserver" --version 2>/dev/null)" == "Kubernetes $K8S_VERSION" ]]
}

if built; then
  echo "$DEST"
  exit 0
fi
command -v go >/dev/null || { echo "build-envtest: no Go toolchain on PATH" >&2; exit 3; }

mkdir -p "$DEST"
exec 9>"$DEST/.build.lock"
flock 9
if built; then  # another run finished the build while we waited
  echo "$DEST"
  exit 0
fi

export GOTOOLCHAIN=local GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
LOG="$DEST/build.log"
echo "build-envtest: building kube-apiserver $K8S_VERSION and etcd $ETCD_VERSION into $DEST with $(go env GOVERSION) (takes minutes, once; log: $LOG)" >&2
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
trap 'echo "build-envtest: failed; last lines of $LOG:" >&2; tail -n 30 "$LOG" >&2' ERR
: >"$LOG"

# kube-apiserver: k8s.io/kubernetes points its staging modules at ./staging; pin each to the
# matching published v0.x release instead, reading the list from the module's own go.mod.
PROXY="$(go env GOPROXY)"; PROXY="${PROXY%%,*}"
[[ "$PROXY" == http* ]] || PROXY="https://proxy.golang.org"
mkdir -p "$WORK/apiserver"
cd "$WORK/apiserver"
go mod init envtest/apiserver >>"$LOG" 2>&1
curl -fsSL "$PROXY/k8s.io/kubernetes/@v/$K8S_VERSION.mod" -o upstream.mod 2>>"$LOG"
grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging/src/k8s\.io/[a-z0-9-]+' upstream.mod \
  | awk '{print $1}' | sort -u | while read -r mod; do
      go mod edit -replace "$mod=$mod@$STAGING_VERSION"
    done
go mod edit -require "k8s.io/kubernetes@$K8S_VERSION"
# Stamp the version the way the release build does, so /version and --version tell the truth.
MINOR="${K8S_VERSION#v1.}"; MINOR="${MINOR%%.*}"
VERSION_PKG="k8s.io/component-base/version"
LDFLAGS="-s -w -X $VERSION_PKG.gitVersion=$K8S_VERSION -X $VERSION_PKG.gitMajor=1"
LDFLAGS+=" -X $VERSION_PKG.gitMinor=$MINOR -X $VERSION_PKG.gitTreeState=clean"
go build -ldflags "$LDFLAGS" -o "$DEST/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver >>"$LOG" 2>&1

# etcd: its main is a one-liner around etcdmain.Main.
mkdir -p "$WORK/etcd"
cd "$WORK/etcd"
go mod init envtest/etcd >>"$LOG" 2>&1
cat > main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
go mod edit -require "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
go build -ldflags "-s -w" -o "$DEST/etcd.tmp" . >>"$LOG" 2>&1
# Move into place last, so a half-finished build never looks complete.
mv "$DEST/etcd.tmp" "$DEST/etcd"
mv "$DEST/kube-apiserver.tmp" "$DEST/kube-apiserver"
echo "$DEST"
