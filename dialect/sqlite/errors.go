package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/shiplock/shiplock/dialect"
)

// Classify: an embedded database is either there or not, so nothing is
// Retryable. A database still locked by another writer after the busy
// timeout (SQLITE_BUSY, SQLITE_LOCKED and their extended codes) is a
// LockConflict: the migration can run once that writer is done. Anything
// else (a syntax error, a constraint, a file that cannot be opened or
// written) is Permanent.
func (*Dialect) Classify(err error) dialect.ErrorClass {
	var e *msqlite.Error
	if errors.As(err, &e) {
		switch e.Code() & 0xff { // the primary result code
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return dialect.LockConflict
		}
	}
	return dialect.Permanent
}

// TimeoutStatements: SQLite has no lock or statement timeouts beyond the
// busy timeout set when opening.
func (*Dialect) TimeoutStatements(time.Duration, time.Duration, bool) []string { return nil }

func (*Dialect) SessionTimeouts(context.Context, dialect.Querier) ([]string, error) { return nil, nil }

// AsyncCommit: SQLite's durability is a connection pragma, not a
// transaction setting; commits stay synchronous.
func (*Dialect) AsyncCommit() string { return "" }

func (*Dialect) Flush(context.Context, *sql.Conn) error { return nil }

// MarkAppliedSQL: one INSERT per version, in order, and per record.
func (d *Dialect) MarkAppliedSQL(rs ...dialect.Record) string {
	// Table names are rewritten in the SQL text only, never in the values
	// (and never used as a format: a quoted name may hold a %).
	insertVersion := d.sql("INSERT INTO goose_db_version (version_id, is_applied) VALUES (")
	insertRecord := d.sql("INSERT INTO shiplock_versions (version_id, source, checksum, state, statement) VALUES (")
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "%s%d, 1);\n", insertVersion, r.Version)
		if r.Checksum != "" {
			fmt.Fprintf(&b, `%s%d, %s, %s, 'applied', 0)
		ON CONFLICT (version_id) DO UPDATE SET source = excluded.source, checksum = excluded.checksum,
			state = excluded.state, statement = 0, updated_at = datetime('now');
`, insertRecord, r.Version, quote(r.Source), quote(r.Checksum))
		}
	}
	return b.String()
}

func (d *Dialect) MarkRevertedSQL(versions ...int64) string {
	list := make([]string, len(versions))
	for i, v := range versions {
		list[i] = strconv.FormatInt(v, 10)
	}
	in := strings.Join(list, ", ")
	return d.sql(fmt.Sprintf("DELETE FROM goose_db_version WHERE version_id IN (%s); DELETE FROM shiplock_versions WHERE version_id IN (%s)", in, in))
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// RunTx runs the parts one by one: an embedded database has no round
// trips to save. BEGIN IMMEDIATE takes the write lock at once, as the
// driver's own transactions do here (_txlock=immediate).
func (*Dialect) RunTx(ctx context.Context, conn *sql.Conn, settings, stmts []string) error {
	fail := func(i int, err error) error {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return &dialect.TxError{Index: i, Err: err}
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return &dialect.TxError{Index: -1, Err: err}
	}
	for _, s := range settings {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return fail(-1, err)
		}
	}
	for i, s := range stmts {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return fail(i, err)
		}
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fail(len(stmts), err)
	}
	return nil
}
