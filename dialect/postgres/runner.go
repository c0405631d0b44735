package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/shiplock/shiplock/dialect"
)

// ImplicitCommit: PostgreSQL's DDL is transactional; no statement commits
// the block by itself (a file's own COMMIT is transaction control, which
// the engine finds and runs statement by statement).
func (Dialect) ImplicitCommit(string) bool { return false }

// localSettings is s as one query of SET LOCAL statements (one server
// round of work for all of them), for the inside of a transaction block:
// they end with it. "" when s sets nothing.
func localSettings(s dialect.Settings) string {
	var out []string
	if s.LockTimeout > 0 {
		out = append(out, fmt.Sprintf("SET LOCAL lock_timeout = '%dms'", s.LockTimeout.Milliseconds()))
	}
	if s.StatementTimeout > 0 {
		out = append(out, fmt.Sprintf("SET LOCAL statement_timeout = '%dms'", s.StatementTimeout.Milliseconds()))
	}
	if s.AsyncCommit {
		// The WAL flush is what a commit waits for; without it a crash
		// can lose the transaction, but only whole.
		out = append(out, "SET LOCAL synchronous_commit = off")
	}
	return strings.Join(out, "; ")
}

// InTx opens a transaction, sets s in it with SET LOCAL (one query), runs
// fn and commits, or rolls back when fn fails.
func (Dialect) InTx(ctx context.Context, conn *sql.Conn, s dialect.Settings, fn func(*sql.Tx) error) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if set := localSettings(s); set != "" {
		if _, err := tx.ExecContext(ctx, set); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("set %s: %w", set, err)
		}
	}
	return dialect.CommitOrRollback(tx, fn)
}

// WithSession reads the session's lock_timeout and statement_timeout, sets
// those s bounds (one query), runs fn and sets both back, one query each.
// Inside a transaction block (a file that opened one) the settings follow
// the block: its rollback takes them back too.
func (Dialect) WithSession(ctx context.Context, conn *sql.Conn, s dialect.Settings, fn func() error) error {
	if s.LockTimeout <= 0 && s.StatementTimeout <= 0 {
		return fn()
	}
	var lock, statement string
	if err := conn.QueryRowContext(ctx, `SELECT current_setting('lock_timeout'), current_setting('statement_timeout')`).Scan(&lock, &statement); err != nil {
		return fmt.Errorf("read session timeouts: %w", err)
	}
	var set []string
	if s.LockTimeout > 0 {
		set = append(set, fmt.Sprintf("SET lock_timeout = '%dms'", s.LockTimeout.Milliseconds()))
	}
	if s.StatementTimeout > 0 {
		set = append(set, fmt.Sprintf("SET statement_timeout = '%dms'", s.StatementTimeout.Milliseconds()))
	}
	if _, err := conn.ExecContext(ctx, strings.Join(set, "; ")); err != nil {
		return fmt.Errorf("set %s: %w", strings.Join(set, "; "), err)
	}
	err := fn()
	for _, restore := range []string{"SET lock_timeout = " + literal(lock), "SET statement_timeout = " + literal(statement)} {
		if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), restore); rerr != nil && err == nil {
			err = fmt.Errorf("restore session timeouts: %w", rerr)
		}
	}
	return err
}

// literal quotes a setting's value as current_setting shows it (digits and
// a unit: no backslash, whatever standard_conforming_strings says).
func literal(v string) string { return "'" + strings.ReplaceAll(v, "'", "''") + "'" }

// WithoutLockTimeout runs fn with the session's lock_timeout lifted, and
// sets it back after.
func (Dialect) WithoutLockTimeout(ctx context.Context, q dialect.Querier, fn func() error) error {
	var lock string
	if err := q.QueryRowContext(ctx, `SELECT current_setting('lock_timeout')`).Scan(&lock); err != nil {
		return fmt.Errorf("read lock_timeout: %w", err)
	}
	if _, err := q.ExecContext(ctx, "SET lock_timeout = 0"); err != nil {
		return err
	}
	err := fn()
	if _, rerr := q.ExecContext(context.WithoutCancel(ctx), "SET lock_timeout = "+literal(lock)); rerr != nil && err == nil {
		err = fmt.Errorf("restore lock_timeout: %w", rerr)
	}
	return err
}

// Flush commits a transaction that holds a transaction id, synchronously:
// its commit waits for the WAL, which holds every earlier commit, to reach
// disk.
func (Dialect) Flush(ctx context.Context, conn *sql.Conn) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	var id int64
	if err := tx.QueryRowContext(ctx, `SELECT txid_current()`).Scan(&id); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}
