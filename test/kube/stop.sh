#!/usr/bin/env bash
# Stop shiplock's Kubernetes test environment by the PIDs start.sh recorded
# (node agent first, so that it stops its pods; etcd last), kill what is left
# of pod processes, and delete the state directory ($SHIPLOCK_KUBE_DIR).
# Safe to run when nothing runs; cached binaries are kept.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=env.sh
. "$HERE/env.sh"
STATE=$SHIPLOCK_KUBE_DIR
PIDS=$STATE/pids

for name in nodeagent kube-scheduler kube-controller-manager kube-apiserver etcd; do
  f=$PIDS/$name.pid
  [[ -f $f ]] || continue
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
    kube_log "stop: stopped $name (pid $pid)"
  fi
done

# Pod processes the agent could not stop (it was killed): each container runs
# in its own process group, recorded in <pod>/pids/<container>.<n>.
for f in "$STATE"/nodeagent/*/pids/*; do
  [[ -f $f ]] || continue
  pgid=$(cat "$f")
  if [[ $pgid =~ ^[0-9]+$ ]] && kill -0 -- "-$pgid" 2>/dev/null; then
    kill -KILL -- "-$pgid" 2>/dev/null && kube_log "stop: killed leftover pod process group $pgid ($f)"
  fi
done

if [[ -d $STATE ]]; then
  rm -rf "$STATE"
  kube_log "stop: removed $STATE"
fi
