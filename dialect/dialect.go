// Package dialect defines what the migration engine needs from a database,
// as small interfaces by role: the bookkeeping Store (goose's version table
// and shiplock's record table, with one writer of version rows), the Locker
// across all runners, the Runner that owns BEGIN, settings and COMMIT, and
// the Classifier of driver errors. Dialect is their union; each database has
// its own subpackage (postgres, sqlite, mysql), and dialecttest checks every
// role of every dialect.
package dialect

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Querier is satisfied by *sql.Conn and *sql.Tx: dialect queries run on
// whichever the engine holds, so bookkeeping can share a migration's
// transaction.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

var (
	_ Querier = (*sql.Conn)(nil)
	_ Querier = (*sql.Tx)(nil)
)

// VersionRow is one row of goose_db_version.
type VersionRow struct {
	ID        int64
	Version   int64
	IsApplied bool
	Time      time.Time
}

// Record states.
const (
	// StateApplied: the version was applied from a file with Checksum.
	StateApplied = "applied"
	// StateApplying and StateReverting mark a migration running statement
	// by statement (outside a transaction): Statement statements of it have
	// completed. A marker whose runner is gone (Alive false) means the run
	// died or failed half-way.
	StateApplying  = "applying"
	StateReverting = "reverting"
)

// Record is one row of shiplock's own table, shiplock_versions, which goose
// never reads: the checksum of the file a version was applied from, or the
// progress of a migration running outside a transaction.
type Record struct {
	Version   int64
	Source    string
	Checksum  string
	State     string
	Statement int // statements completed, while applying or reverting
	Updated   time.Time

	// The fields below describe a marker (State applying or reverting);
	// they are zero for StateApplied.

	// InFlight: statement number Statement (0-based) was sent and its
	// outcome is not recorded: the runner died while it ran, or before it
	// could record that it had finished.
	InFlight bool
	// Total is the number of statements of the direction being run.
	Total int
	// Pid is the server process (backend) of the runner's session, which
	// holds the migration lock while it runs; PutRecord sets it to the
	// writing session's own. 0 where the database has none (SQLite).
	Pid int64
	// Started is when the runner with Pid started this migration.
	Started time.Time
	// Alive is read, never written: the backend Pid exists and holds the
	// migration lock now, so the marker is in progress, not interrupted.
	// Always false for the reading session's own marker and on SQLite.
	Alive bool
}

// Dialect is the per-database part of the engine: the union of its roles.
// Implementations hold no connection state and are safe for concurrent use.
type Dialect interface {
	Store
	Locker
	Runner
	Classifier
}

// Store is the bookkeeping: goose's version table and shiplock's record
// table beside it.
type Store interface {
	// Name is the dialect's short name: "postgres", "sqlite", "mysql".
	Name() string
	// VersionTable is goose's version table the dialect reads and writes;
	// shiplock's own table is VersionTable().Records(), beside it.
	VersionTable() Table

	// TablesExist reports whether goose_db_version and shiplock_versions
	// exist where the unqualified queries find them (through search_path,
	// as goose's CLI finds its table).
	TablesExist(ctx context.Context, q Querier) (versions, records bool, err error)
	// OtherVersionTable returns the name of a table shaped like goose's
	// version table (version_id, is_applied, tstamp) where the version
	// table is looked for, other than VersionTable(); "" when none. It is
	// read only when the version table is missing: a goose that ran with
	// -table leaves one that shiplock must not start beside.
	OtherVersionTable(ctx context.Context, q Querier) (string, error)
	// CreateVersionTable creates goose_db_version in goose's current layout
	// and inserts the version-0 row, as goose does. Run it in a transaction.
	CreateVersionTable(ctx context.Context, q Querier) error
	// EnsureRecordTable creates shiplock_versions when missing.
	EnsureRecordTable(ctx context.Context, q Querier) error

	// ListVersions returns every row of goose_db_version, newest id first.
	ListVersions(ctx context.Context, q Querier) ([]VersionRow, error)
	// ListRecords returns every record; the table must exist.
	ListRecords(ctx context.Context, q Querier) ([]Record, error)
	// ListAll returns what ListVersions and ListRecords do, in one round
	// trip; both tables must exist.
	ListAll(ctx context.Context, q Querier) ([]VersionRow, []Record, error)

	// PutRecord inserts or replaces the record of r.Version (a progress
	// marker, or a checksum repaired); it writes no version row.
	PutRecord(ctx context.Context, q Querier, r Record) error
	DeleteRecord(ctx context.Context, q Querier, version int64) error

	// AppliedStatements and RevertedStatements are the one writer of
	// version rows. AppliedStatements records each r.Version as applied,
	// in order: a goose_db_version row and, when r.Checksum is set, its
	// record in shiplock_versions (replacing any progress marker).
	// RevertedStatements deletes the versions' rows and records. Each
	// statement is its own query with literal values, so that they can
	// travel in RunTx after a migration's statements; MarkApplied and
	// MarkReverted run the same statements. Nil for no versions.
	AppliedStatements(rs ...Record) []string
	RevertedStatements(versions ...int64) []string
}

// MarkApplied runs s.AppliedStatements(rs...) on q, in order. q should be
// a transaction: the rows are then written together, and a Store whose
// statements start with a check (the lease's fence) holds it to the commit.
func MarkApplied(ctx context.Context, s Store, q Querier, rs ...Record) error {
	return execAll(ctx, q, s.AppliedStatements(rs...))
}

// MarkReverted runs s.RevertedStatements(versions...) on q, in order, as
// MarkApplied does.
func MarkReverted(ctx context.Context, s Store, q Querier, versions ...int64) error {
	return execAll(ctx, q, s.RevertedStatements(versions...))
}

func execAll(ctx context.Context, q Querier, stmts []string) error {
	for _, s := range stmts {
		if _, err := q.ExecContext(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// Locker is the migration lock across runners, held by a session.
type Locker interface {
	// TryLock tries once to take the migration lock on conn, without
	// waiting and without leaving a transaction open. The lock is held by
	// the session: it is released by Unlock or when the session ends.
	TryLock(ctx context.Context, conn *sql.Conn) (bool, error)
	Unlock(ctx context.Context, conn *sql.Conn) error
	// LockHolder describes who holds the lock ("pid 123 (app: shiplock)"),
	// or "" when unknown or not held.
	LockHolder(ctx context.Context, conn *sql.Conn) (string, error)
}

// Settings are shiplock's bounds for a migration's statements, as values:
// the Runner decides how to scope them (PostgreSQL: SET LOCAL inside the
// transaction; MySQL: session variables set before and restored after).
// The zero value sets nothing.
type Settings struct {
	// LockTimeout bounds each statement's wait for a lock
	// (--ddl-lock-timeout); 0: no bound.
	LockTimeout time.Duration
	// StatementTimeout bounds each statement's run time
	// (--statement-timeout); 0: no bound.
	StatementTimeout time.Duration
	// AsyncCommit lets the transaction commit without waiting for
	// durability where the database can (a server crash can then lose
	// the transaction, whole: the migration with its version row). Only
	// RunTx and InTx honour it.
	AsyncCommit bool
}

// Runner owns BEGIN, settings and COMMIT.
type Runner interface {
	// ImplicitCommit reports whether stmt, inside a transaction, commits
	// it by itself (MySQL DDL, GRANT, LOCK TABLES, BEGIN, ANALYZE ...; an
	// unknown statement counts as committing). Always false on PostgreSQL
	// and SQLite. A migration holding such a statement runs statement by
	// statement with progress markers, like NO TRANSACTION.
	ImplicitCommit(stmt string) bool
	// RunTx runs one transaction on conn with s in effect for it: it
	// opens it, then each of stmts, then commits. Every statement is its
	// own query, sent as a driver sends a query without arguments
	// (goose's statement semantics); the database may pipeline them
	// where a failure inside the transaction aborts the rest. It stops at
	// the first error and returns a *TxError saying which part failed. On
	// return no transaction is left open on conn (or conn is closed), and
	// the session's settings are as before.
	RunTx(ctx context.Context, conn *sql.Conn, s Settings, stmts []string) error
	// InTx runs fn in a transaction on conn with s in effect for it (Go
	// migrations, bookkeeping writes): it commits when fn returns nil,
	// else rolls back and returns fn's error.
	InTx(ctx context.Context, conn *sql.Conn, s Settings, fn func(*sql.Tx) error) error
	// WithSession runs fn with s's timeouts in effect on conn's session
	// (a migration run statement by statement, outside a transaction) and
	// restores the session's own values after, whatever fn returned.
	WithSession(ctx context.Context, conn *sql.Conn, s Settings, fn func() error) error
	// Flush makes every transaction committed so far on conn durable.
	Flush(ctx context.Context, conn *sql.Conn) error
}

// CommitOrRollback runs fn in tx, then commits it when fn returns nil,
// else rolls it back and returns fn's error: the end of every InTx.
func CommitOrRollback(tx *sql.Tx, fn func(*sql.Tx) error) error {
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// TxError is a failure of RunTx.
type TxError struct {
	// Index is the failing part: -1 for the opening (BEGIN and the
	// settings), i for stmts[i], len(stmts) for the commit.
	Index int
	// Position is the 1-based character position of the error in the
	// failing statement when the database reports one, else 0.
	Position int
	Err      error
}

func (e *TxError) Error() string { return e.Err.Error() }
func (e *TxError) Unwrap() error { return e.Err }

// ErrorClass says what an error from the driver means for the caller: wait
// and retry, or stop.
type ErrorClass int

const (
	// Permanent errors cannot heal by retrying: TLS misconfiguration, a
	// syntax error, anything unknown.
	Permanent ErrorClass = iota
	// Retryable errors can heal: connection refused, a name that does not
	// resolve yet, a timeout, a server starting up or out of connections.
	Retryable
	// Auth is a rejected login: wrong password or unknown role.
	Auth
	// MissingDatabase is a server that answers but lacks the database.
	MissingDatabase
	// LockConflict is a statement that gave up waiting for a lock, or was
	// chosen as a deadlock victim: the migration can be retried once the
	// conflicting transaction is gone.
	LockConflict
)

func (c ErrorClass) String() string {
	switch c {
	case Retryable:
		return "retryable"
	case Auth:
		return "authentication failed"
	case MissingDatabase:
		return "database does not exist"
	case LockConflict:
		return "lock conflict"
	}
	return "permanent"
}

// Classifier classifies a driver's errors by what they are (SQLSTATE,
// errno), never by their text.
type Classifier interface {
	Classify(err error) ErrorClass
}

// LockWaiter is implemented by dialects whose lock holder can wake the
// runners waiting for the lock when it releases it, so they need not poll.
type LockWaiter interface {
	// ListenForRelease subscribes conn to release signals; call it before
	// the first TryLock so no signal is missed.
	ListenForRelease(ctx context.Context, conn *sql.Conn) error
	// WaitForRelease returns when the lock may have been released: a
	// signal came, max elapsed (a holder that died or never signals), or
	// ctx ended.
	WaitForRelease(ctx context.Context, conn *sql.Conn, max time.Duration) error
	// StopListening undoes ListenForRelease.
	StopListening(ctx context.Context, conn *sql.Conn) error
}

// IndexChecker is implemented by dialects that can build indexes outside a
// transaction (CREATE INDEX CONCURRENTLY), which leaves an INVALID index
// behind when it fails.
type IndexChecker interface {
	// InvalidIndexes names the invalid indexes in the database, except
	// those a CREATE INDEX CONCURRENTLY is building now.
	InvalidIndexes(ctx context.Context, q Querier) ([]string, error)
	// IndexValidity finds the index called name (an identifier as written
	// in SQL: quoted or not) on table (as written, possibly qualified):
	// qualified is its quoted, schema-qualified name, "" when there is no
	// such index.
	IndexValidity(ctx context.Context, q Querier, table, name string) (qualified string, valid bool, err error)
	// DropIndex drops an index by its qualified name, outside a
	// transaction and without blocking writes (DROP INDEX CONCURRENTLY).
	DropIndex(ctx context.Context, q Querier, qualified string) error
	// WithoutLockTimeout runs fn (a concurrent index build) with the
	// session's lock timeout lifted, and restores the session's value
	// after: the build's table lock conflicts with no read or write, so
	// live traffic never queues behind it, while its waits for older
	// transactions would fail it under any lock timeout.
	WithoutLockTimeout(ctx context.Context, q Querier, fn func() error) error
	// BackendBusy reports whether the server process pid, started before
	// since, still exists (its statement may still be running, even when
	// its client is gone).
	BackendBusy(ctx context.Context, q Querier, pid int64, since time.Time) (bool, error)
}

// Outcome is what the catalog says of a statement whose runner died while
// it ran.
type Outcome int

const (
	// Unknown: the catalog cannot tell (a statement it cannot read, a
	// data statement run in autocommit, a multi-part change found half
	// there).
	Unknown Outcome = iota
	// Done: the statement's effect is in the catalog.
	Done
	// NotDone: the catalog is as before the statement.
	NotDone
)

func (o Outcome) String() string {
	return [...]string{"unknown", "done", "not done"}[o]
}

// Settler is implemented by dialects whose server finishes a statement
// after its client died (MariaDB and MySQL complete the DDL, then drop the
// connection), so that a statement recorded as started and never
// confirmed can be settled from its effect in the catalog, never from an
// "already exists" error.
type Settler interface {
	// Settle reports the outcome of stmt, sent on the server connection
	// pid by a runner whose marker was written at since. busy says that
	// connection still runs something (stmt, maybe): the outcome is then
	// Unknown; wait and ask again.
	Settle(ctx context.Context, q Querier, stmt string, pid int64, since time.Time) (o Outcome, busy bool, err error)
}

// StepChecker is implemented by dialects with statements that cannot run
// in a file run statement by statement, where shiplock records its
// progress in its own table between the statements.
type StepChecker interface {
	// StepConflict says why stmt cannot run there; "" when it can.
	StepConflict(stmt string) string
}

// Canceller is implemented by dialects that can cancel the statement a
// session runs from another session, leaving the first one usable.
type Canceller interface {
	// BackendPID returns conn's server process id.
	BackendPID(ctx context.Context, conn *sql.Conn) (int64, error)
	// CancelBackend cancels what the server process pid runs now, if
	// anything (pg_cancel_backend): the statement fails and ends.
	CancelBackend(ctx context.Context, q Querier, pid int64) error
}

// TxStater is implemented by dialects that know, without a round trip,
// whether a session is inside a transaction block: a file that holds its
// own COMMIT runs statement by statement, partly inside the block goose
// opened and partly outside it.
type TxStater interface {
	// InTxBlock reports whether conn is inside a transaction block, open
	// or failed.
	InTxBlock(conn *sql.Conn) bool
}

// QueryRecords runs query, which selects version_id, source, checksum,
// state, statement, updated_at, in_flight, total, pid, started_at (NULL
// allowed) and alive, and scans the records: the one reader of
// shiplock_versions rows for every dialect.
func QueryRecords(ctx context.Context, q Querier, query string) ([]Record, error) {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		var (
			r       Record
			started sql.NullTime
		)
		if err := rows.Scan(&r.Version, &r.Source, &r.Checksum, &r.State, &r.Statement, &r.Updated, &r.InFlight, &r.Total, &r.Pid, &started, &r.Alive); err != nil {
			return nil, err
		}
		r.Started = started.Time
		out = append(out, r)
	}
	return out, rows.Err()
}

// Activity is what a server process runs, seen from another session.
type Activity struct {
	// Query is the statement it runs now, as the server received it; ""
	// when it runs nothing.
	Query string
	// Running is how long Query has run.
	Running time.Duration
	// BlockedBy describes the sessions whose locks it waits for ("pid 123
	// (app: psql, idle in transaction for 00:00:12)"); "" when it waits for
	// none.
	BlockedBy string
}

// Observer is implemented by dialects that can see, from another session,
// what a server process runs: a heartbeat names the statement a long
// migration is on and what holds it up.
type Observer interface {
	Activity(ctx context.Context, q Querier, pid int64) (Activity, error)
}

// Leaser is implemented by dialects that offer a lease lock besides the
// session lock: a row in a lock table with an owner and an expiry on the
// server's clock, for connections whose session does not stay with the
// client (a transaction pooler such as PgBouncer in transaction mode).
type Leaser interface {
	// Direct reports whether conn is proven to reach the server directly,
	// one server session for the life of the connection, so that session
	// state (a session lock, LISTEN, SET) stays with it; why says what
	// was seen. It creates no session state.
	Direct(ctx context.Context, conn *sql.Conn) (direct bool, why string, err error)
	// Lease returns owner's lease on the migration lock, for length d,
	// creating the lock table when missing. owner identifies the runner
	// (a random token in it makes it unique).
	Lease(ctx context.Context, q Querier, owner string, d time.Duration) (Lease, error)
	// RoleTimeouts reports whether the connected role (or its database
	// setting) bounds lock waits and statement run times by itself
	// (lock_timeout, statement_timeout): through a transaction pooler a
	// statement run outside a transaction gets only those.
	RoleTimeouts(ctx context.Context, q Querier) (lock, statement bool, err error)
}

// Lease is one runner's lease on the migration lock. Each call is its own
// transaction unless q is one.
type Lease interface {
	// Take tries once to take the lease: it succeeds when nobody holds an
	// unexpired lease and no session holds the session lock. Otherwise
	// holder describes who holds it.
	Take(ctx context.Context, q Querier) (ok bool, holder string, err error)
	// Renew extends the lease by its length from now; it fails with
	// ErrLeaseLost when the lease expired or is another's.
	Renew(ctx context.Context, q Querier) error
	// Release gives the lease up, if still ours.
	Release(ctx context.Context, q Querier) error
	// Fence is a statement for the inside of a transaction: it fails the
	// transaction unless the lease is ours and unexpired, and keeps it
	// ours until the transaction ends (a taker waits for the commit).
	Fence() string
	// Check is Fence without keeping the lease: for a transaction that
	// may last long, where holding the lease's row would block its
	// renewal.
	Check() string
	// Table is the lock table's qualified name.
	Table() string
}

// ErrLeaseLost is the failure of Lease.Renew, or of a transaction fenced
// by Lease.Fence, when the lease has expired or another runner took it.
var ErrLeaseLost = errors.New("the migration lease was lost (expired, or taken by another runner)")
