// Package testdb gives each test a fresh, empty database on a real server, so
// that tests can run in parallel and never see each other's tables.
//
//   - [Postgres] creates a database on the server named by
//     SHIPLOCK_TEST_POSTGRES_URL or, when that is unset, on an ephemeral
//     cluster that the test binary starts once with the initdb and postgres
//     binaries found on the machine. A package whose tests use the ephemeral
//     cluster must run them through [Main] from its TestMain, which stops the
//     cluster and removes its files when the tests are done.
//   - [OwnPostgres] starts a throw-away cluster that one test owns, so that it
//     can stop, crash and restart it.
//   - [MySQL] creates a database on SHIPLOCK_TEST_MYSQL_URL, by default
//     mysql://root@127.0.0.1:3306/.
//   - [SQLite] names a new database file in the test's temporary directory.
//
// When no server can be had, the helpers skip the test with a message that
// names the environment variable to set; with SHIPLOCK_TEST_REQUIRE_DB set (1, true,
// yes; see [Required]) they fail it instead, so that CI can never pass by skipping. A server that is
// configured but unreachable always fails the test.
//
// Every database is dropped, and every role removed, in t.Cleanup. All
// helpers are safe to call from parallel tests.
package testdb

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// Environment variables read by this package.
const (
	// EnvPostgresURL is a superuser URL of an existing PostgreSQL server,
	// e.g. postgres://postgres:pw@127.0.0.1:5432/postgres?sslmode=disable.
	// When it is unset, an ephemeral cluster is started.
	EnvPostgresURL = "SHIPLOCK_TEST_POSTGRES_URL"
	// EnvMySQLURL is the URL of a MySQL or MariaDB server whose user may
	// create databases, e.g. mysql://root:pw@127.0.0.1:3306/. When it is
	// unset, mysql://root@127.0.0.1:3306/ is tried.
	EnvMySQLURL = "SHIPLOCK_TEST_MYSQL_URL"
	// EnvRequireDB, set to any value but empty, 0, false, no or off (see
	// [Required]), makes a test fail instead of skipping when a server cannot
	// be had.
	EnvRequireDB = "SHIPLOCK_TEST_REQUIRE_DB"
)

// mainRan records that Main runs the tests, so the shared ephemeral cluster
// will be stopped.
var mainRan atomic.Bool

// Main runs the tests of a package and then stops the ephemeral PostgreSQL
// cluster, if they started one, and removes its files. Call it from TestMain:
//
//	func TestMain(m *testing.M) { testdb.Main(m) }
//
// It is required in every package whose tests call [Postgres] or
// [PostgresServer] without SHIPLOCK_TEST_POSTGRES_URL: a test binary cannot
// otherwise run code after its last test, so those helpers fail the test when
// Main is not in use. (Should the binary die anyway, the postmaster gets
// SIGQUIT from the kernel as its parent exits, and the next test binary that
// starts a cluster removes the files left behind.)
func Main(m *testing.M) {
	mainRan.Store(true)
	// When TestMain returns, the testing package exits with m.Run's code.
	m.Run()
	shutdownShared()
}

// unavailableError says that no server was configured or found: the test is
// skipped unless EnvRequireDB is set.
type unavailableError struct{ msg string }

func (e *unavailableError) Error() string { return e.msg }

// required reports whether EnvRequireDB asks for failures instead of skips.
func required(getenv func(string) string) bool { return Required(getenv(EnvRequireDB)) }

// Required reports whether v, the value of a SHIPLOCK_TEST_REQUIRE_*
// variable, asks for failures instead of skips: empty, 0, false, no and off
// (any case) do not; any other value does, so that a typo never turns
// failures into skips.
func Required(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "0", "false", "f", "no", "n", "off":
		return false
	}
	return true
}

// report ends the test for err: a skip when err is an unavailableError and
// EnvRequireDB is not set, a failure otherwise.
func report(t testing.TB, getenv func(string) string, err error) {
	t.Helper()
	var unavailable *unavailableError
	if errors.As(err, &unavailable) {
		if required(getenv) {
			t.Fatalf("%v (failing instead of skipping because %s is set)", err, EnvRequireDB)
		}
		t.Skip(err)
	}
	t.Fatal(err)
}

// maxNameLen is PostgreSQL's identifier limit (NAMEDATALEN-1); MySQL allows 64.
const maxNameLen = 63

// uniqueName returns prefix + the test's name made safe for an identifier +
// a random suffix, at most maxNameLen bytes, all lower case [a-z0-9_].
func uniqueName(prefix, testName string) string {
	var b strings.Builder
	underscore := true // no leading '_' after the prefix
	for _, r := range strings.ToLower(testName) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
			underscore = false
		case !underscore:
			b.WriteByte('_')
			underscore = true
		}
	}
	name := strings.TrimSuffix(b.String(), "_")
	suffix := "_" + randomHex(4)
	if room := maxNameLen - len(prefix) - len(suffix); len(name) > room {
		// Keep the end: subtest names are the most specific part.
		name = strings.TrimPrefix(name[len(name)-room:], "_")
	}
	return prefix + name + suffix
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand.Read does not fail on Linux
	}
	return hex.EncodeToString(b)
}

// SQLite returns the path of a new SQLite database file in the test's
// temporary directory. The file does not exist yet: SQLite creates it on
// first open, and t.TempDir removes it.
func SQLite(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "shiplock.db")
}
