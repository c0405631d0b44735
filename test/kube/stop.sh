#!/usr/bin/env bash
# Stop shiplock's Kubernetes test environment by the PIDs start.sh recorded
# (node agent first, so that it stops its pods while the API server is up;
# then the control plane together), kill what is left of pod processes, and
# delete the state directory ($SHIPLOCK_KUBE_DIR). Safe to run when nothing
# runs; cached binaries are kept. Takes ~7 s.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=env.sh
. "$HERE/env.sh"
STATE=$SHIPLOCK_KUBE_DIR
PIDS=$STATE/pids

# stop NAME... : SIGTERM, up to 10 s to exit, then SIGKILL
stop() {
  local name pid live=()
  for name in "$@"; do
    [[ -f $PIDS/$name.pid ]] || continue
    pid=$(cat "$PIDS/$name.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" && live+=("$name:$pid")
    fi
  done
  for _ in $(seq 1 100); do
    local still=0
    for e in "${live[@]}"; do kill -0 "${e#*:}" 2>/dev/null && still=1; done
    [[ $still == 0 ]] && break
    sleep 0.1
  done
  for e in "${live[@]}"; do
    kill -KILL "${e#*:}" 2>/dev/null
    kube_log "stop: stopped ${e%%:*} (pid ${e#*:})"
  done
}
stop nodeagent
stop kube-scheduler kube-controller-manager kube-apiserver
stop etcd # last: the others talk to it while they shut down

# Pod processes the agent could not stop (it was killed): each container runs
# in its own process group, recorded in <pod>/pids/<container>.<n>.
for f in "$STATE"/nodeagent/*/pids/*; do
  [[ -f $f ]] || continue
  pgid=$(cat "$f")
  if [[ $pgid =~ ^[0-9]+$ ]] && kill -0 -- "-$pgid" 2>/dev/null; then
    kill -KILL -- "-$pgid" 2>/dev/null && kube_log "stop: killed leftover pod process group $pgid ($f)"
  fi
done

# runc containers (--image-store) the agent could not delete; they are not
# children of anything above.
RUNC_ROOT=$STATE/nodeagent/.runc
if [[ -d $RUNC_ROOT ]] && command -v runc >/dev/null; then
  for id in $(runc --root "$RUNC_ROOT" list -q 2>/dev/null); do
    runc --root "$RUNC_ROOT" delete --force "$id" && kube_log "stop: deleted leftover runc container $id"
  done
fi

if [[ -d $STATE ]]; then
  rm -rf "$STATE"
  kube_log "stop: removed $STATE"
fi
