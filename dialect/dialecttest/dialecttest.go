// Package dialecttest is the conformance suite every dialect passes, one
// part per role of dialect.Dialect: the Store (the version table as goose
// reads it, shiplock's record table, one writer of version rows), the
// Locker, the Runner (transactions, settings, statement semantics) and the
// Classifier, on errors the dialect's real server produces.
//
// A dialect's test calls Run (or one of RunStore, RunLocker, RunRunner,
// RunClassifier) with Options saying how to get a fresh database and, for a
// network database, how to open connections that fail to log in, name a
// missing database or find no server. Parts a dialect lacks are skipped
// with the reason: SQLite has no server, no login and no session settings.
package dialecttest

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/shiplock/shiplock/dialect"
)

// Opener returns a new handle on one database each time it is called, so
// the suite can act as two runners (two sessions).
type Opener func(t testing.TB) (*sql.DB, dialect.Dialect)

// Options describe a dialect to the suite.
type Options struct {
	// NewDatabase creates a fresh, empty database and returns an Opener
	// for it. Required.
	NewDatabase func(t testing.TB) Opener

	// SettingsQuery is a SELECT of two integers: the lock timeout and the
	// statement timeout in effect for the session (inside a transaction:
	// for it), in milliseconds, 0 for none. The Runner parts read it to
	// check that Settings are in effect inside RunTx, InTx and WithSession
	// and restored after. "" for a dialect whose Runner has no settings
	// (SQLite): those checks are skipped.
	SettingsQuery string

	// Faults opens handles that fail to connect in known ways, for the
	// Classifier; nil for an embedded database (SQLite), whose Auth,
	// MissingDatabase and refused-connection parts are skipped.
	Faults *Faults
}

// Faults open handles on the dialect's server that fail in known ways.
// Each returned handle is closed by the suite.
type Faults struct {
	// WrongPassword opens an existing database as an existing user with a
	// wrong password: the server refuses the login (Auth).
	WrongPassword func(t testing.TB) *sql.DB
	// MissingDatabase opens, with valid credentials, a database the server
	// does not have (MissingDatabase).
	MissingDatabase func(t testing.TB) *sql.DB
	// Port opens a database at 127.0.0.1:port, speaking the dialect's
	// protocol; the suite passes a port that nothing listens on, so the
	// connection is refused (Retryable).
	Port func(t testing.TB, port int) *sql.DB
}

// Run runs every role's part of the suite.
func Run(t *testing.T, o Options) {
	t.Run("Store", func(t *testing.T) { RunStore(t, o) })
	t.Run("Locker", func(t *testing.T) { RunLocker(t, o) })
	t.Run("Runner", func(t *testing.T) { RunRunner(t, o) })
	t.Run("Classifier", func(t *testing.T) { RunClassifier(t, o) })
}

// parts runs each part in parallel on a fresh database.
func parts(t *testing.T, o Options, ps map[string]func(*testing.T, Options, Opener)) {
	if o.NewDatabase == nil {
		t.Fatal("dialecttest: Options.NewDatabase is required")
	}
	for name, p := range ps {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p(t, o, o.NewDatabase(t))
		})
	}
}

// conn opens a handle with open and returns one of its connections (one
// session), both closed when the test ends.
func conn(t testing.TB, open Opener) (*sql.Conn, dialect.Dialect) {
	t.Helper()
	db, d := open(t)
	t.Cleanup(func() { db.Close() })
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, d
}

// readSettings reads o.SettingsQuery on q.
func readSettings(t testing.TB, o Options, q dialect.Querier) dialect.Settings {
	t.Helper()
	var lock, statement int64
	if err := q.QueryRowContext(context.Background(), o.SettingsQuery).Scan(&lock, &statement); err != nil {
		t.Fatalf("read settings: %v", err)
	}
	return dialect.Settings{LockTimeout: time.Duration(lock) * time.Millisecond, StatementTimeout: time.Duration(statement) * time.Millisecond}
}

// createTable creates a table on c outside the Runner (the parts test the
// Runner with it).
func createTable(t testing.TB, c *sql.Conn, ddl string) {
	t.Helper()
	if _, err := c.ExecContext(context.Background(), ddl); err != nil {
		t.Fatalf("%s: %v", ddl, err)
	}
}

func count(t testing.TB, q dialect.Querier, table string) int {
	t.Helper()
	var n int
	if err := q.QueryRowContext(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatalf("count %s (is a transaction left open?): %v", table, err)
	}
	return n
}
