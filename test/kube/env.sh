# shellcheck shell=bash
# Defaults shared by the scripts of shiplock's Kubernetes test environment.
# Sourced, not run. Every value can be overridden from the environment.

# Cached binaries (kube-apiserver, kube-controller-manager, kube-scheduler,
# etcd, nodeagent). Survives stop.sh; rebuilt only when a version changes.
SHIPLOCK_KUBE_BIN=${SHIPLOCK_KUBE_BIN:-/tmp/shiplock-kube/bin}
# Run-time state (certificates, kubeconfig, etcd data, logs, pids, pods).
# Created fresh by start.sh, deleted by stop.sh.
SHIPLOCK_KUBE_DIR=${SHIPLOCK_KUBE_DIR:-/tmp/shiplock-kube/run}
# Build-only Go cache and wrapper modules for the Kubernetes build.
SHIPLOCK_KUBE_BUILD=${SHIPLOCK_KUBE_BUILD:-/tmp/shiplock-kube/build}

K8S_VERSION=${K8S_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
HELM_VERSION=${HELM_VERSION:-v3.22.0}

# Loopback ports; chosen away from the usual defaults (6443, 2379, 10250,
# 10257, 10259) so that the harness can run beside another cluster recipe.
SHIPLOCK_KUBE_APISERVER_PORT=${SHIPLOCK_KUBE_APISERVER_PORT:-16443}
SHIPLOCK_KUBE_ETCD_PORT=${SHIPLOCK_KUBE_ETCD_PORT:-12379}        # peer: +1
SHIPLOCK_KUBE_KCM_PORT=${SHIPLOCK_KUBE_KCM_PORT:-10357}
SHIPLOCK_KUBE_SCHEDULER_PORT=${SHIPLOCK_KUBE_SCHEDULER_PORT:-10359}
SHIPLOCK_KUBE_NODE_PORT=${SHIPLOCK_KUBE_NODE_PORT:-10350}        # node agent's kubelet API
SHIPLOCK_KUBE_POD_PORTS=${SHIPLOCK_KUBE_POD_PORTS:-20000-29999}  # per-pod ports (PORT_NUM)
SHIPLOCK_KUBE_NODE=${SHIPLOCK_KUBE_NODE:-nodeagent}

# Image names the tests use (see kubetest.ToolboxImage, kubetest.ShiplockImage).
SHIPLOCK_KUBE_TOOLBOX_IMAGE=shiplock.test/toolbox
SHIPLOCK_KUBE_SHIPLOCK_IMAGE=shiplock.test/shiplock

kube_log() { echo "kube: $*" >&2; }
