#!/usr/bin/env bash
# Builds the test-only kube-apiserver and etcd binaries once, from the Go module proxy, into a
# cache folder outside the repository (the envtest layout: one folder holding both binaries).
# Usage: scripts/build-envtest.sh [DEST]; prints the folder on its last line.
# Nothing built here is committed: the product is Python, these are test fixtures.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
STAGING_VERSION="v0${K8S_VERSION#v1}"
CACHE_ROOT="${GITOPS_RECEIVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gitops-receiver}"
DEST="${1:-$CACHE_ROOT/k8s/$K8S_VERSION}"

if [[ -x "$DEST/kube-apiserver" && -x "$DEST/etcd" ]]; then
  echo "$DEST"
  exit 0
fi
command -v go >/dev/null || { echo "build-envtest: no Go toolchain on PATH" >&2; exit 3; }

export GOTOOLCHAIN=local GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
echo "build-envtest: building kube-apiserver $K8S_VERSION and etcd $ETCD_VERSION into $DEST (takes minutes, once)" >&2
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$DEST"

# kube-apiserver: k8s.io/kubernetes points its staging modules at ./staging; pin each to the
# matching published v0.x release instead, reading the list from the module's own go.mod.
PROXY="$(go env GOPROXY)"; PROXY="${PROXY%%,*}"
[[ "$PROXY" == http* ]] || PROXY="https://proxy.golang.org"
mkdir -p "$WORK/apiserver"
cd "$WORK/apiserver"
go mod init envtest/apiserver >/dev/null 2>&1
curl -fsSL "$PROXY/k8s.io/kubernetes/@v/$K8S_VERSION.mod" -o upstream.mod
grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging/src/k8s\.io/[a-z0-9-]+' upstream.mod \
  | awk '{print $1}' | sort -u | while read -r mod; do
      go mod edit -replace "$mod=$mod@$STAGING_VERSION"
    done
go mod edit -require "k8s.io/kubernetes@$K8S_VERSION"
go build -o "$DEST/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver

# etcd: its main is a one-liner around etcdmain.Main.
mkdir -p "$WORK/etcd"
cd "$WORK/etcd"
go mod init envtest/etcd >/dev/null 2>&1
cat > main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
go mod edit -require "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
go build -o "$DEST/etcd" .
echo "$DEST"
