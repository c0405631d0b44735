package sqlite

import (
	"context"
	"database/sql"

	"github.com/shiplock/shiplock/dialect"
)

// ImplicitCommit: SQLite's DDL is transactional.
func (*Dialect) ImplicitCommit(string) bool { return false }

// Settings: SQLite has no lock or statement timeouts beyond the busy
// timeout set when opening, and its durability is a connection pragma, not
// a transaction setting: the Runner takes s and sets nothing.

// InTx runs fn in the driver's transaction (BEGIN IMMEDIATE, as opened).
func (*Dialect) InTx(ctx context.Context, conn *sql.Conn, _ dialect.Settings, fn func(*sql.Tx) error) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	return dialect.CommitOrRollback(tx, fn)
}

func (*Dialect) WithSession(_ context.Context, _ *sql.Conn, _ dialect.Settings, fn func() error) error {
	return fn()
}

func (*Dialect) Flush(context.Context, *sql.Conn) error { return nil }

// RunTx runs the parts one by one: an embedded database has no round
// trips to save. BEGIN IMMEDIATE takes the write lock at once, as the
// driver's own transactions do here (_txlock=immediate).
func (*Dialect) RunTx(ctx context.Context, conn *sql.Conn, _ dialect.Settings, stmts []string) error {
	fail := func(i int, err error) error {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return &dialect.TxError{Index: i, Err: err}
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return &dialect.TxError{Index: -1, Err: err}
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
