#!/usr/bin/env bash
# Start the node agent against the running control plane and wait until its
# Node is Ready and untainted. Called by start.sh; run it yourself to restart
# the agent (e.g. after changing it: build.sh, then nodeagent.sh): a running
# agent is stopped first, and without arguments the previous ones are reused.
#
# Usage: nodeagent.sh [--image IMAGE=PATH ...] [other nodeagent flags]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=env.sh
. "$HERE/env.sh"
STATE=$SHIPLOCK_KUBE_DIR
PKI=$STATE/pki
PIDF=$STATE/pids/nodeagent.pid
[[ -f $STATE/kubeconfig ]] || { kube_log "nodeagent: no control plane in $STATE: run start.sh"; exit 1; }

args=("$@")
if [[ $# == 0 && -f $STATE/nodeagent.args ]]; then
  mapfile -t args < "$STATE/nodeagent.args"
fi
printf '%s\n' "${args[@]}" > "$STATE/nodeagent.args"

if [[ -f $PIDF ]] && kill -0 "$(cat "$PIDF")" 2>/dev/null; then
  pid=$(cat "$PIDF")
  kill -TERM "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  kube_log "nodeagent: stopped the previous agent (pid $pid)"
fi

mkdir -p "$STATE/logs" "$STATE/pids" "$STATE/nodeagent"
setsid "$SHIPLOCK_KUBE_BIN/nodeagent" \
  --kubeconfig="$STATE/kubeconfig" \
  --node-name="$SHIPLOCK_KUBE_NODE" \
  --listen="127.0.0.1:$SHIPLOCK_KUBE_NODE_PORT" \
  --tls-cert="$PKI/kubelet.crt" --tls-key="$PKI/kubelet.key" \
  --work-dir="$STATE/nodeagent" \
  --pod-ports="$SHIPLOCK_KUBE_POD_PORTS" \
  "${args[@]}" >>"$STATE/logs/nodeagent.log" 2>&1 </dev/null &
echo $! >"$PIDF"

APISERVER=https://127.0.0.1:$SHIPLOCK_KUBE_APISERVER_PORT
node_ready() { # Ready=True and no taints left (compact JSON: any user agent but curl's)
  local j
  j=$(curl -fsS -A shiplock-kube --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
      "$APISERVER/api/v1/nodes/$SHIPLOCK_KUBE_NODE" 2>/dev/null) || return 1
  [[ $j == *'{"type":"Ready","status":"True"'* && $j != *'"taints"'* ]]
}
deadline=$(( $(date +%s) + 60 ))
until node_ready; do
  if ! kill -0 "$(cat "$PIDF")" 2>/dev/null || (( $(date +%s) > deadline )); then
    kube_log "nodeagent: failed to start; last log lines:"; tail -30 "$STATE/logs/nodeagent.log" >&2; exit 1
  fi
  sleep 0.2
done
msg="nodeagent: node $SHIPLOCK_KUBE_NODE Ready (pid $(cat "$PIDF"))"
[[ -n ${T0:-} ]] && msg="$msg at +$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s"
kube_log "$msg"
