#!/usr/bin/env bash
# Start shiplock's Kubernetes test environment on 127.0.0.1 only:
#   etcd -> kube-apiserver -> kube-controller-manager -> kube-scheduler -> nodeagent
# from the binaries build.sh put in $SHIPLOCK_KUBE_BIN, with fresh state in
# $SHIPLOCK_KUBE_DIR (default /tmp/shiplock-kube/run). Prints the kubeconfig
# path on stdout (and nothing else); progress goes to stderr.
#
# Usage: start.sh [NODEAGENT FLAGS...]    e.g. --image example.test/app=/path/to/app
#
# Images mapped for the node agent:
#   shiplock.test/toolbox    test/kube/testimages/toolbox, built here from this checkout
#   shiplock.test/shiplock   $SHIPLOCK_BIN, when set
#   $SHIPLOCK_KUBE_IMAGES    more IMAGE=PATH words, space-separated
#   --image IMAGE=PATH       arguments
#
# Ready (default ServiceAccount exists, Node Ready) in ~4 s. Stop with stop.sh.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=env.sh
. "$HERE/env.sh"

STATE=$SHIPLOCK_KUBE_DIR
BIN=$SHIPLOCK_KUBE_BIN
PKI=$STATE/pki
LOGS=$STATE/logs
PIDS=$STATE/pids

for c in etcd kube-apiserver kube-controller-manager kube-scheduler nodeagent; do
  [[ -x $BIN/$c ]] || { kube_log "start: $BIN/$c missing: run test/kube/build.sh first"; exit 1; }
done
for pidf in "$PIDS"/*.pid; do
  [[ -f $pidf ]] || continue
  if kill -0 "$(cat "$pidf")" 2>/dev/null; then
    kube_log "start: $(basename "$pidf" .pid) already running (pid $(cat "$pidf")); run test/kube/stop.sh first"
    exit 1
  fi
done
rm -rf "$STATE"
mkdir -p "$LOGS" "$PIDS"

t0=$(date +%s.%N)
elapsed() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }

"$HERE/gen-certs.sh"

# launch NAME CMD... : in the background, in its own session, with log and pid file
launch() {
  local name=$1; shift
  setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$PIDS/$name.pid"
}

# wait_for NAME SECONDS CMD... : poll CMD until it succeeds
wait_for() {
  local name=$1 timeout=$2; shift 2
  local deadline=$(( $(date +%s) + timeout ))
  until "$@" >/dev/null 2>&1; do
    if ! kill -0 "$(cat "$PIDS/$name.pid")" 2>/dev/null; then
      kube_log "start: $name exited; last log lines:"; tail -30 "$LOGS/$name.log" >&2; return 1
    fi
    if (( $(date +%s) > deadline )); then
      kube_log "start: $name not ready after ${timeout}s; last log lines:"; tail -30 "$LOGS/$name.log" >&2; return 1
    fi
    sleep 0.2
  done
  kube_log "start: ${LABEL:-$name} ready at +$(elapsed)s"
}

api() { curl -fsS --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" "https://127.0.0.1:$SHIPLOCK_KUBE_APISERVER_PORT$1"; }

# ---- etcd --------------------------------------------------------------------
peer=$((SHIPLOCK_KUBE_ETCD_PORT + 1))
launch etcd "$BIN/etcd" \
  --name=shiplock-kube \
  --data-dir="$STATE/etcd-data" \
  --listen-client-urls="http://127.0.0.1:$SHIPLOCK_KUBE_ETCD_PORT" \
  --advertise-client-urls="http://127.0.0.1:$SHIPLOCK_KUBE_ETCD_PORT" \
  --listen-peer-urls="http://127.0.0.1:$peer" \
  --initial-advertise-peer-urls="http://127.0.0.1:$peer" \
  --initial-cluster="shiplock-kube=http://127.0.0.1:$peer" \
  --initial-cluster-state=new \
  --unsafe-no-fsync \
  --log-level=warn
wait_for etcd 30 curl -fsS "http://127.0.0.1:$SHIPLOCK_KUBE_ETCD_PORT/health"

# ---- kube-apiserver ----------------------------------------------------------
# The service range is only an allocation pool; it sits inside 127.0.0.0/8 so
# that a stray connection to a ClusterIP stays on loopback. Endpoints cannot
# hold a loopback IP, hence no endpoint reconciler.
SERVICE_CIDR=127.96.0.0/16
launch kube-apiserver "$BIN/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$SHIPLOCK_KUBE_ETCD_PORT" \
  --bind-address=127.0.0.1 \
  --advertise-address=127.0.0.1 \
  --secure-port="$SHIPLOCK_KUBE_APISERVER_PORT" \
  --cert-dir="$STATE/apiserver-certs" \
  --tls-cert-file="$PKI/apiserver.crt" \
  --tls-private-key-file="$PKI/apiserver.key" \
  --client-ca-file="$PKI/ca.crt" \
  --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
  --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
  --kubelet-preferred-address-types=InternalIP,Hostname \
  --kubelet-certificate-authority="$PKI/ca.crt" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$PKI/sa.pub" \
  --service-account-signing-key-file="$PKI/sa.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --endpoint-reconciler-type=none \
  --authorization-mode=Node,RBAC \
  --allow-privileged=true \
  --profiling=false \
  --v=1
wait_for kube-apiserver 120 api /readyz

# ---- kube-controller-manager -------------------------------------------------
# No node-lifecycle controller: it would taint the agent's Node and evict its
# pods whenever a heartbeat is late.
CONTROLLERS=namespace-controller,serviceaccount-controller,serviceaccount-token-controller,root-ca-certificate-publisher-controller,clusterrole-aggregation-controller,garbage-collector-controller,job-controller,cronjob-controller,deployment-controller,replicaset-controller,statefulset-controller,daemonset-controller,replicationcontroller-controller,ttl-after-finished-controller,pod-garbage-collector-controller,endpointslice-controller,disruption-controller,resourcequota-controller
launch kube-controller-manager "$BIN/kube-controller-manager" \
  --kubeconfig="$STATE/kubeconfig" \
  --authentication-kubeconfig="$STATE/kubeconfig" \
  --authorization-kubeconfig="$STATE/kubeconfig" \
  --bind-address=127.0.0.1 \
  --secure-port="$SHIPLOCK_KUBE_KCM_PORT" \
  --cert-dir="$STATE/kcm-certs" \
  --leader-elect=false \
  --controllers="$CONTROLLERS" \
  --service-account-private-key-file="$PKI/sa.key" \
  --root-ca-file="$PKI/ca.crt" \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --use-service-account-credentials=false \
  --concurrent-job-syncs=10 \
  --profiling=false \
  --v=1
wait_for kube-controller-manager 60 curl -fsSk "https://127.0.0.1:$SHIPLOCK_KUBE_KCM_PORT/healthz"

# ---- kube-scheduler ------------------------------------------------------------
launch kube-scheduler "$BIN/kube-scheduler" \
  --kubeconfig="$STATE/kubeconfig" \
  --authentication-kubeconfig="$STATE/kubeconfig" \
  --authorization-kubeconfig="$STATE/kubeconfig" \
  --bind-address=127.0.0.1 \
  --secure-port="$SHIPLOCK_KUBE_SCHEDULER_PORT" \
  --leader-elect=false \
  --profiling=false \
  --v=1
wait_for kube-scheduler 60 curl -fsSk "https://127.0.0.1:$SHIPLOCK_KUBE_SCHEDULER_PORT/healthz"

# ---- images and node agent -------------------------------------------------------
mkdir -p "$STATE/images"
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$STATE/images/toolbox" ./test/kube/testimages/toolbox)
images=(--image "$SHIPLOCK_KUBE_TOOLBOX_IMAGE=$STATE/images/toolbox")
if [[ -n ${SHIPLOCK_BIN:-} ]]; then
  [[ -x $SHIPLOCK_BIN ]] || { kube_log "start: SHIPLOCK_BIN=$SHIPLOCK_BIN is not an executable"; exit 1; }
  images+=(--image "$SHIPLOCK_KUBE_SHIPLOCK_IMAGE=$SHIPLOCK_BIN")
fi
for m in ${SHIPLOCK_KUBE_IMAGES:-}; do images+=(--image "$m"); done
# Images built by cmd/shiplock-image run under runc; they win over --image.
if [[ -n ${SHIPLOCK_KUBE_IMAGE_STORE:-} ]]; then
  [[ -f $SHIPLOCK_KUBE_IMAGE_STORE/index.json ]] || { kube_log "start: SHIPLOCK_KUBE_IMAGE_STORE=$SHIPLOCK_KUBE_IMAGE_STORE is not an OCI layout"; exit 1; }
  images+=(--image-store "$SHIPLOCK_KUBE_IMAGE_STORE")
fi
T0=$t0 "$HERE/nodeagent.sh" "${images[@]}" "$@"

# Pods cannot be created before the namespace's "default" ServiceAccount exists.
LABEL="default ServiceAccount" wait_for kube-controller-manager 60 api /api/v1/namespaces/default/serviceaccounts/default
kube_log "start: up in $(elapsed)s; export KUBECONFIG=$STATE/kubeconfig"
echo "$STATE/kubeconfig"
