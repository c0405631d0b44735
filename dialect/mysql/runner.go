package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/shiplock/shiplock/dialect"
)

var _ dialect.Runner = Dialect{}

// saves numbers the user variables that hold a session's own values, so
// that nested calls (WithSession inside WithSession) do not overwrite the
// outer call's.
var saves atomic.Uint64

// sessionSQL returns the statement that saves the session's own values of
// the variables s sets (in user variables @shiplock_N_*, N unique to the
// call) and sets s's, and the statement that restores them and clears the
// user variables; "" for the zero Settings. One round trip each way. A SET
// evaluates every right-hand side before it assigns, so the saved values
// are the old ones.
//
// LockTimeout sets lock_wait_timeout (metadata locks: an ALTER behind an
// open transaction) and innodb_lock_wait_timeout (row locks), in whole
// seconds rounded up, at least 1. StatementTimeout sets MariaDB's
// max_statement_time (seconds, microsecond precision), inside /*M! */, and
// MySQL's max_execution_time (milliseconds), inside /*!50708 */: each
// server runs its own part and skips the other's (MariaDB skips versioned
// comments from 50700 on). MySQL's max_execution_time bounds SELECT
// statements only: DDL and writes run unbounded there.
func sessionSQL(s dialect.Settings) (set, restore string) {
	if s.LockTimeout <= 0 && s.StatementTimeout <= 0 {
		return "", ""
	}
	n := saves.Add(1)
	save := func(v string) string { return fmt.Sprintf("@shiplock_%d_%s", n, v) }
	// The first assignment stands outside the versioned comments.
	sets := []string{save("set") + " = 1"}
	restores := []string{save("set") + " = NULL"}
	add := func(v, value string) (set, restore string) {
		return fmt.Sprintf("%s = @@SESSION.%s, SESSION %s = %s", save(v), v, v, value),
			fmt.Sprintf("SESSION %s = %s, %s = NULL", v, save(v), save(v))
	}
	if s.LockTimeout > 0 {
		secs := fmt.Sprint(max(1, int64(math.Ceil(s.LockTimeout.Seconds()))))
		for _, v := range []string{"lock_wait_timeout", "innodb_lock_wait_timeout"} {
			st, re := add(v, secs)
			sets, restores = append(sets, st), append(restores, re)
		}
	}
	set, restore = "SET "+strings.Join(sets, ", "), "SET "+strings.Join(restores, ", ")
	if s.StatementTimeout > 0 {
		st, re := add("max_statement_time", fmt.Sprintf("%.6f", max(s.StatementTimeout.Seconds(), 1e-6)))
		set += " /*M!100101 , " + st + " */"
		restore += " /*M!100101 , " + re + " */"
		ms := max(1, (s.StatementTimeout+time.Millisecond-1)/time.Millisecond)
		st, re = add("max_execution_time", fmt.Sprint(int64(ms)))
		set += " /*!50708 , " + st + " */"
		restore += " /*!50708 , " + re + " */"
	}
	return set, restore
}

// withSettings sets s on conn's session, runs fn, and restores the
// session's values. A restore that fails closes conn (database/sql then
// drops it): a session left with shiplock's bounds must not be reused.
// Failing to set them is a *setError.
func withSettings(ctx context.Context, conn *sql.Conn, s dialect.Settings, fn func() error) error {
	set, restore := sessionSQL(s)
	if set == "" {
		return fn()
	}
	if _, err := conn.ExecContext(ctx, set); err != nil {
		return &setError{err}
	}
	err := fn()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, rerr := conn.ExecContext(rctx, restore); rerr != nil {
		discard(conn)
	}
	return err
}

// setError is the failure to set a session's bounds.
type setError struct{ err error }

func (e *setError) Error() string { return "set session bounds: " + e.err.Error() }
func (e *setError) Unwrap() error { return e.err }

// discard closes conn's session: database/sql drops a connection whose
// Raw function returns driver.ErrBadConn.
func discard(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
}

// rollback ends the transaction on conn whatever ctx says (a statement
// that failed with 1205 leaves it open), and drops the session when it
// cannot.
func rollback(ctx context.Context, conn *sql.Conn) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		discard(conn)
	}
}

// RunTx runs START TRANSACTION, each statement as its own query (the
// driver cannot pipeline: one statement, one round trip), and COMMIT.
// Any failure is followed by a ROLLBACK: InnoDB's lock wait timeout (1205)
// rolls back only the statement and leaves the transaction open.
// AsyncCommit does nothing: durability is innodb_flush_log_at_trx_commit,
// a global setting.
func (Dialect) RunTx(ctx context.Context, conn *sql.Conn, s dialect.Settings, stmts []string) error {
	err := withSettings(ctx, conn, s, func() error {
		if _, err := conn.ExecContext(ctx, "START TRANSACTION"); err != nil {
			rollback(ctx, conn)
			return &dialect.TxError{Index: -1, Err: err}
		}
		for i, stmt := range stmts {
			if _, err := conn.ExecContext(ctx, stmt); err != nil {
				rollback(ctx, conn)
				return &dialect.TxError{Index: i, Err: err}
			}
		}
		if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
			rollback(ctx, conn)
			return &dialect.TxError{Index: len(stmts), Err: err}
		}
		return nil
	})
	var se *setError
	if errors.As(err, &se) {
		return &dialect.TxError{Index: -1, Err: err}
	}
	return err
}

// InTx: as RunTx, with fn's statements.
func (Dialect) InTx(ctx context.Context, conn *sql.Conn, s dialect.Settings, fn func(*sql.Tx) error) error {
	return withSettings(ctx, conn, s, func() error {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		return dialect.CommitOrRollback(tx, fn)
	})
}

func (Dialect) WithSession(ctx context.Context, conn *sql.Conn, s dialect.Settings, fn func() error) error {
	return withSettings(ctx, conn, s, fn)
}

// Flush does nothing: with innodb_flush_log_at_trx_commit = 1 (the
// default) and sync_binlog = 1, a commit is durable when it returns. With
// other values the server itself may lose the last second of commits in a
// crash, and no session can change that (the variables are global).
func (Dialect) Flush(context.Context, *sql.Conn) error { return nil }
