#!/usr/bin/env bash
# The Kubernetes tier of CI: build (cached) and start shiplock's Kubernetes
# test environment (test/kube), or stop it. From a fresh clone on a fresh
# machine the first build takes ~10 minutes (Go module proxy only); later
# runs reuse the binaries in /tmp/shiplock-kube/bin and start in seconds.
#
# Sourced (what test/all.sh does):
#     source .ci/kube.sh      builds, stops leftovers, starts, exports
#                             KUBECONFIG, and stops everything on EXIT
#                             (an EXIT trap set before is kept and run after)
# Run:
#     KUBECONFIG=$(bash .ci/kube.sh start) && export KUBECONFIG
#     trap 'bash .ci/kube.sh stop' EXIT
#     bash .ci/kube.sh stop   stop by PID and delete the state (also in a trap)
#
# cmd/shiplock-image builds the release, accounts app and migration images
# (img.shiplock.test/...) into an OCI layout, $SHIPLOCK_KUBE_IMAGE_STORE
# (default /tmp/shiplock-kube/images/oci/layout); the node agent runs them
# under runc; every Kubernetes test of shiplock runs those (e2e tests add
# their migration images to the store). The host binary also runs as image
# shiplock.test/shiplock:dev (any tag), for bench/kuberun and manual runs: it
# is $SHIPLOCK_BIN when set, else built here from ./cmd/shiplock. More
# mappings: SHIPLOCK_KUBE_IMAGES="IMAGE=PATH IMAGE=PATH". Other settings
# (paths, ports) are in test/kube/env.sh.

_kube_main() {
	local root
	root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	case ${1:-start} in
	start)
		bash "$root/test/kube/build.sh" >&2 || return
		if [[ -z ${SHIPLOCK_BIN:-} && -d $root/cmd/shiplock ]]; then
			local out=${SHIPLOCK_KUBE_IMAGES_DIR:-/tmp/shiplock-kube/images}
			mkdir -p "$out"
			(cd "$root" && CGO_ENABLED=0 go build -o "$out/shiplock" ./cmd/shiplock) >&2 || return
			SHIPLOCK_BIN=$out/shiplock
		fi
		# The images users pull, built every run (reproducible; Go's build
		# cache makes it ~1 min), run by the node agent under runc.
		local store=${SHIPLOCK_KUBE_IMAGE_STORE:-/tmp/shiplock-kube/images/oci/layout}
		(cd "$root" && go run ./cmd/shiplock-image -out "$(dirname "$store")" -prefix img.shiplock.test/ -accounts) >&2 || return
		bash "$root/test/kube/stop.sh" >&2 || return # leftovers of an aborted run
		SHIPLOCK_KUBE_IMAGE_STORE=$store SHIPLOCK_BIN=${SHIPLOCK_BIN:-} bash "$root/test/kube/start.sh" || {
			local rc=$?
			bash "$root/test/kube/stop.sh" >&2
			return $rc
		}
		;;
	stop)
		bash "$root/test/kube/stop.sh" >&2
		;;
	*)
		echo "usage: .ci/kube.sh [start|stop]" >&2
		return 2
		;;
	esac
}

if [[ ${BASH_SOURCE[0]} != "$0" ]]; then
	# Sourced: start, export KUBECONFIG, stop on exit.
	_kube_prev_trap=$(trap -p EXIT)
	_kube_prev_trap=${_kube_prev_trap#trap -- }
	_kube_prev_trap=${_kube_prev_trap% EXIT}
	eval "_kube_prev_trap=${_kube_prev_trap:-''}"
	_kube_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	trap 'bash "$_kube_root/test/kube/stop.sh" >&2; eval "$_kube_prev_trap"' EXIT
	# The tests read it (kubetest.RequireImages); _kube_main builds it.
	export SHIPLOCK_KUBE_IMAGE_STORE=${SHIPLOCK_KUBE_IMAGE_STORE:-/tmp/shiplock-kube/images/oci/layout}
	KUBECONFIG=$(_kube_main start) || {
		echo ".ci/kube.sh: the Kubernetes test environment did not start" >&2
		return 1
	}
	export KUBECONFIG
else
	set -euo pipefail
	_kube_main "$@"
fi
