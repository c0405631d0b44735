#!/usr/bin/env bash
# Build the binaries of shiplock's Kubernetes test environment into
# $SHIPLOCK_KUBE_BIN (default /tmp/shiplock-kube/bin), skipping what is
# already there for the same version:
#
#   kube-apiserver, kube-controller-manager, kube-scheduler  $K8S_VERSION (v1.37.2),
#       from the k8s.io/kubernetes module through a wrapper module whose
#       replace directives point every staging module at its v0.Y.Z release
#       (stamp: .version)
#   etcd    $ETCD_VERSION (v3.6.16), go.etcd.io/etcd/server/v3 (stamp: .etcd-version)
#   helm    $HELM_VERSION (v3.22.0), helm.sh/helm/v3/cmd/helm, for the chart's
#           tests (stamp: .helm-version)
#   nodeagent  test/kube/nodeagent, unit-tested and rebuilt when its
#              sources change (stamp: .nodeagent-hash)
#
# Only the Go module proxy is needed. Cold: ~8-10 min on 2 cores, 2.7 GB peak
# RSS (the apiserver link); cached: ~1 s.
#
# The build uses its own GOCACHE ($SHIPLOCK_KUBE_BUILD/gocache, ~5 GiB at
# peak), deleted afterwards unless SHIPLOCK_KUBE_KEEP_GOCACHE=1.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=env.sh
. "$HERE/env.sh"

OUT=$SHIPLOCK_KUBE_BIN
COMPONENTS="kube-apiserver kube-controller-manager kube-scheduler"
mkdir -p "$OUT" "$SHIPLOCK_KUBE_BUILD"
export GOCACHE=$SHIPLOCK_KUBE_BUILD/gocache
t0=$(date +%s)
cleanup() {
  if [[ ${SHIPLOCK_KUBE_KEEP_GOCACHE:-0} != 1 && -d $GOCACHE ]]; then
    chmod -R u+w "$GOCACHE" 2>/dev/null || true
    rm -rf "$GOCACHE"
  fi
}
trap cleanup EXIT

# ---- Kubernetes ------------------------------------------------------------
stamp="$K8S_VERSION $COMPONENTS"
need_k8s=0
[[ -f $OUT/.version && "$(cat "$OUT/.version")" == "$stamp" ]] || need_k8s=1
for c in $COMPONENTS; do [[ -x $OUT/$c ]] || need_k8s=1; done
if [[ $need_k8s == 1 ]]; then
  wd=$SHIPLOCK_KUBE_BUILD/k8s
  mkdir -p "$wd"
  cd "$wd"
  # k8s.io/kubernetes replaces its staging modules (k8s.io/api, ...) with
  # ./staging/src/..., which the module zip does not contain: take the list
  # from its go.mod and point each one at the matching v0.Y.Z release.
  modfile=$(GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
  staging=$(sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => \./staging/.*#\1#p' "$modfile")
  goversion=$(sed -n 's/^go \(.*\)/\1/p' "$modfile")
  {
    printf 'module k8sbuild\n\ngo %s\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$goversion" "$K8S_VERSION"
    for m in $staging; do
      case $m in
        k8s.io/sample-cli-plugin|k8s.io/sample-controller) continue ;; # not published, not needed
      esac
      printf '\t%s => %s v0.%s\n' "$m" "$m" "${K8S_VERSION#v1.}"
    done
    printf ')\n'
  } > go.mod
  rm -f go.sum
  pkgs=""
  for c in $COMPONENTS; do pkgs="$pkgs k8s.io/kubernetes/cmd/$c"; done
  # shellcheck disable=SC2086
  GOFLAGS="-mod=mod ${GOFLAGS:-}" go get $pkgs
  kube_log "build: modules resolved in $(( $(date +%s) - t0 ))s"
  # Version stamps, so that /version and kubectl report the real version.
  minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  ldflags="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags="$ldflags -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ldflags="$ldflags -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  # One at a time: the apiserver link alone peaks at 2.7 GB.
  for c in $COMPONENTS; do
    s=$(date +%s)
    CGO_ENABLED=0 GOFLAGS="-mod=mod ${GOFLAGS:-}" go build -trimpath -ldflags "$ldflags" -o "$OUT/$c.tmp" "k8s.io/kubernetes/cmd/$c"
    mv "$OUT/$c.tmp" "$OUT/$c"
    kube_log "build: $c built in $(( $(date +%s) - s ))s"
  done
  echo "$stamp" > "$OUT/.version"
else
  kube_log "build: $OUT has Kubernetes $K8S_VERSION"
fi

# ---- etcd ------------------------------------------------------------------
if [[ ! -x $OUT/etcd || "$(cat "$OUT/.etcd-version" 2>/dev/null)" != "$ETCD_VERSION" ]]; then
  s=$(date +%s)
  wd=$SHIPLOCK_KUBE_BUILD/etcd
  mkdir -p "$wd"
  cd "$wd"
  printf 'module etcdbuild\n\ngo 1.26.0\n' > go.mod
  rm -f go.sum
  printf '%s\n' '// Command etcd is the etcd server of go.etcd.io/etcd/server/v3.' 'package main' '' \
    'import (' '	"os"' '' '	"go.etcd.io/etcd/server/v3/etcdmain"' ')' '' 'func main() { etcdmain.Main(os.Args) }' > main.go
  GOFLAGS="-mod=mod ${GOFLAGS:-}" go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  GOFLAGS="-mod=mod ${GOFLAGS:-}" go mod tidy
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$OUT/etcd.tmp" .
  mv "$OUT/etcd.tmp" "$OUT/etcd"
  echo "$ETCD_VERSION" > "$OUT/.etcd-version"
  kube_log "build: etcd $ETCD_VERSION built in $(( $(date +%s) - s ))s"
else
  kube_log "build: $OUT has etcd $ETCD_VERSION"
fi

# ---- helm (charts/shiplock's tests) ---------------------------------------------
if [[ ! -x $OUT/helm || "$(cat "$OUT/.helm-version" 2>/dev/null)" != "$HELM_VERSION" ]]; then
  s=$(date +%s)
  GOBIN=$OUT CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  echo "$HELM_VERSION" > "$OUT/.helm-version"
  kube_log "build: helm $HELM_VERSION built in $(( $(date +%s) - s ))s"
else
  kube_log "build: $OUT has helm $HELM_VERSION"
fi

# ---- node agent --------------------------------------------------------------
src=$HERE/nodeagent
hash=$( (go version; cd "$src" && cat go.mod go.sum ./*.go) | sha256sum | cut -d' ' -f1)
if [[ ! -x $OUT/nodeagent || "$(cat "$OUT/.nodeagent-hash" 2>/dev/null)" != "$hash" ]]; then
  s=$(date +%s)
  # Its unit tests first, with the build's flags so that they share its
  # compiled packages (go vet would compile everything once more).
  (cd "$src" && CGO_ENABLED=0 go test -trimpath -count=1 ./... >&2)
  (cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$OUT/nodeagent.tmp" .)
  mv "$OUT/nodeagent.tmp" "$OUT/nodeagent"
  echo "$hash" > "$OUT/.nodeagent-hash"
  kube_log "build: nodeagent built in $(( $(date +%s) - s ))s"
else
  kube_log "build: $OUT has the current nodeagent"
fi
kube_log "build: done in $(( $(date +%s) - t0 ))s"
