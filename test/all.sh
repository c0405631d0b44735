#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: installs and starts what
# the tests need, then runs them. This is the README's test command and what
# .ci/run calls.
#
#   bash test/all.sh            everything (first run builds the Kubernetes
#                               test control plane: about 10 minutes)
#   SHIPLOCK_SKIP_KUBE=1 bash test/all.sh   without the Kubernetes tier
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

say() { printf '== %s\n' "$*" >&2; }

apt_updated=
need_pkg() { # need_pkg CHECK-COMMAND PACKAGE...
	if ! eval "$1" >/dev/null 2>&1; then
		shift
		if [ -z "$apt_updated" ]; then apt-get update -qq; apt_updated=1; fi
		say "installing $*"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
	fi
}

# PostgreSQL: the tests start their own throw-away clusters with initdb, so
# only the server binaries are needed, plus pg_dump and psql.
need_pkg 'ls /usr/lib/postgresql/*/bin/initdb' postgresql
need_pkg 'command -v pg_dump && command -v psql' postgresql-client
# bash-completion: the completion test loads shiplock's script into bash.
need_pkg 'test -f /usr/share/bash-completion/bash_completion' bash-completion
# PgBouncer: the lease-lock tests start one in front of the test server.
need_pkg 'command -v pgbouncer || test -x /usr/sbin/pgbouncer' pgbouncer
command -v go >/dev/null || { echo "test/all.sh: Go is not installed (see the README)" >&2; exit 1; }

# MariaDB, for the MySQL side of internal/testdb: installed and started when
# missing; the tests log in as a user of their own over TCP.
need_pkg 'command -v mariadbd || test -x /usr/sbin/mariadbd' mariadb-server mariadb-client
if ! mariadb-admin --protocol=socket -uroot status >/dev/null 2>&1; then
	say "starting MariaDB"
	# Without systemd nothing creates the socket's directory.
	mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
	start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
	for _ in $(seq 150); do mariadb-admin --protocol=socket -uroot status >/dev/null 2>&1 && break; sleep 0.2; done
fi
# A failure here is reported by the MySQL tests themselves, which fail
# under SHIPLOCK_TEST_REQUIRE_DB; the rest of the suite still runs.
mariadb --protocol=socket -uroot -e "CREATE USER IF NOT EXISTS 'shiplock_test'@'127.0.0.1' IDENTIFIED BY 'shiplock_test';
	GRANT ALL ON *.* TO 'shiplock_test'@'127.0.0.1' WITH GRANT OPTION;" ||
	say "warning: could not prepare MariaDB's test user; the MySQL tests will fail"
export SHIPLOCK_TEST_MYSQL_URL=${SHIPLOCK_TEST_MYSQL_URL:-mysql://shiplock_test:shiplock_test@127.0.0.1:3306/}

# Tests that need a server fail instead of skipping when it is missing.
export SHIPLOCK_TEST_REQUIRE_DB=1

if [ "${SHIPLOCK_SKIP_KUBE:-}" != 1 ] && [ -f .ci/kube.sh ]; then
	# The node agent runs the built images under runc; their CA bundle comes
	# from the build host's ca-certificates.
	need_pkg 'command -v runc' runc
	# kubectl runs shiplock as its plugin in one test (kubectl-shiplock).
	need_pkg 'command -v kubectl' kubectl
	need_pkg 'test -s /etc/ssl/certs/ca-certificates.crt' ca-certificates
	say "starting the Kubernetes test control plane"
	# shellcheck source=/dev/null
	source .ci/kube.sh
	export SHIPLOCK_TEST_REQUIRE_KUBE=1
	# test/kube/build.sh builds helm for the chart's tests (charts/).
	export SHIPLOCK_HELM=${SHIPLOCK_HELM:-${SHIPLOCK_KUBE_BIN:-/tmp/shiplock-kube/bin}/helm} SHIPLOCK_TEST_REQUIRE_HELM=1
fi

say "go vet"
go vet ./...
say "go test"
go test -count=1 -timeout 30m ./...
say "fuzz: the SQL file parser against goose, and the lint tokenizer, ${SHIPLOCK_FUZZTIME:-20s} each"
# Bounded, on two workers: new inputs, beyond the seed corpus go test ran.
go test -run '^$' -fuzz '^FuzzParse$' -fuzztime "${SHIPLOCK_FUZZTIME:-20s}" -parallel 2 ./migrate/sqlfile
go test -run '^$' -fuzz '^FuzzStatements$' -fuzztime "${SHIPLOCK_FUZZTIME:-20s}" -parallel 2 ./lint
say "go test: the accounts example, release v2"
go test -count=1 -tags v2 ./examples/accounts
