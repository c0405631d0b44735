#!/bin/sh
# Build the bench and run it: bench/run.sh [flags], e.g.
#   bench/run.sh --reps 7 --sizes 1,100,1000
# The bench itself builds shiplock (from HEAD unless --shiplock-rev says
# otherwise), the pgx floor, and goose and golang-migrate once per version
# into the cache directory; see bench/README.md.
set -eu
cd "$(dirname "$0")/.."
cache="${SHIPLOCK_BENCH_CACHE:-${TMPDIR:-/tmp}/shiplock-bench}"
mkdir -p "$cache"
command -v psql >/dev/null || { echo "bench/run.sh: psql not found (apt-get install postgresql-client)" >&2; exit 1; }
[ -x /usr/bin/time ] || echo "bench/run.sh: GNU time not found (apt-get install time); peak RSS will be an upper bound" >&2
go build -o "$cache/bench" ./bench
exec "$cache/bench" --cache "$cache" "$@"
