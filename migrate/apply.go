package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/shiplock/shiplock/dialect"
)

// apply runs todo in the configured transaction mode. It returns what was
// committed, in order, and the first error.
func (m *Migrator) apply(ctx context.Context, conn *sql.Conn, todo []*Migration, dir Direction) ([]MigrationResult, error) {
	if m.opts.TxMode == TxAll {
		var results []MigrationResult
		err := m.retry(ctx, "the run", func() error {
			results = results[:0]
			return m.inTx(ctx, conn, func(tx *sql.Tx) error {
				if err := m.setTimeouts(ctx, tx, true); err != nil {
					return err
				}
				for _, mig := range todo {
					r, err := m.runOne(ctx, tx, nil, mig, dir)
					if err != nil {
						return err
					}
					results = append(results, r)
				}
				return nil
			})
		})
		if err != nil {
			return nil, err
		}
		m.logResults(results)
		return results, nil
	}

	results := make([]MigrationResult, 0, len(todo))
	for _, mig := range todo {
		var (
			r   MigrationResult
			err error
		)
		if mig.NoTx || (m.opts.TxMode == TxNone && mig.Kind == KindSQL) {
			r, err = m.runNoTx(ctx, conn, mig, dir, 0)
		} else {
			err = m.retry(ctx, mig.Source, func() error {
				return m.inTx(ctx, conn, func(tx *sql.Tx) error {
					if err := m.setTimeouts(ctx, tx, true); err != nil {
						return err
					}
					r, err = m.runOne(ctx, tx, nil, mig, dir)
					return err
				})
			})
		}
		if err != nil {
			return results, err
		}
		m.logResults([]MigrationResult{r})
		results = append(results, r)
	}
	return results, nil
}

// runNoTx runs a migration outside a transaction from statement first,
// with shiplock's timeouts set on the session around it and restored after.
func (m *Migrator) runNoTx(ctx context.Context, conn *sql.Conn, mig *Migration, dir Direction, first int) (MigrationResult, error) {
	var restore []string
	if m.opts.DDLLockTimeout > 0 || m.opts.StatementTimeout > 0 {
		var err error
		if restore, err = m.dialect.SessionTimeouts(ctx, conn); err != nil {
			return MigrationResult{}, fmt.Errorf("read session timeouts: %w", err)
		}
		if err := m.setTimeouts(ctx, conn, false); err != nil {
			return MigrationResult{}, err
		}
	}
	r, err := m.runFrom(ctx, conn, conn, mig, dir, first)
	var merr *MigrationError
	if ic, ok := m.dialect.(dialect.IndexChecker); ok && errors.As(err, &merr) {
		merr.InvalidIndexes, _ = ic.InvalidIndexes(context.WithoutCancel(ctx), conn)
	}
	for _, stmt := range restore {
		if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), stmt); rerr != nil && err == nil {
			err = fmt.Errorf("restore session timeouts: %w", rerr)
		}
	}
	return r, err
}

func (m *Migrator) setTimeouts(ctx context.Context, q dialect.Querier, local bool) error {
	for _, stmt := range m.dialect.TimeoutStatements(m.opts.DDLLockTimeout, m.opts.StatementTimeout, local) {
		if _, err := q.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("set timeouts (%s): %w", stmt, err)
		}
	}
	return nil
}

// retry runs fn again after a lock timeout or deadlock, up to
// Options.LockRetries times with doubling delays. fn must be safe to run
// again: a transaction that was rolled back.
func (m *Migrator) retry(ctx context.Context, what string, fn func() error) error {
	delay := m.opts.RetryDelay
	if delay <= 0 {
		delay = 500 * time.Millisecond
	}
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil || attempt >= m.opts.LockRetries || m.dialect.Classify(err) != dialect.LockConflict {
			return err
		}
		m.log.Warn("lock conflict, retrying", "migration", what, "attempt", attempt+1, "of", m.opts.LockRetries, "delay", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		delay *= 2
	}
}

// runOne runs one migration on q (a transaction, or conn itself when the
// migration runs outside one) and records it. Outside a transaction, a
// marker in shiplock_versions tracks the statements completed, so that a
// crash half-way is reported precisely instead of re-run blindly; the
// version row and the marker's removal then commit together.
func (m *Migrator) runOne(ctx context.Context, q dialect.Querier, conn *sql.Conn, mig *Migration, dir Direction) (MigrationResult, error) {
	return m.runFrom(ctx, q, conn, mig, dir, 0)
}

// runFrom is runOne starting at statement first (for Repair's resume).
func (m *Migrator) runFrom(ctx context.Context, q dialect.Querier, conn *sql.Conn, mig *Migration, dir Direction, first int) (MigrationResult, error) {
	start := time.Now()
	r := MigrationResult{Version: mig.Version, Source: mig.Source, Direction: dir}
	fail := func(line int, stmt string, err error) (MigrationResult, error) {
		return r, &MigrationError{Version: mig.Version, File: mig.Source, Direction: dir, Line: line, Statement: shorten(stmt), Err: err}
	}
	tracked := conn != nil && mig.Kind == KindSQL
	markerState := dialect.StateApplying
	if dir == Down {
		markerState = dialect.StateReverting
	}
	mark := func(done int) error {
		if err := m.dialect.PutRecord(ctx, conn, m.record(mig, markerState, done)); err != nil {
			return fmt.Errorf("record progress: %w", err)
		}
		return nil
	}

	switch mig.Kind {
	case KindSQL:
		stmts := mig.Statements(dir)
		r.Empty = len(stmts) == 0
		if tracked {
			if err := mark(first); err != nil {
				return fail(0, "", err)
			}
		}
		for i := first; i < len(stmts); i++ {
			s := stmts[i]
			exec := func() error { _, err := q.ExecContext(ctx, s.SQL); return err }
			var err error
			if tracked {
				// Outside a transaction, retry the statement itself: the
				// ones before it are done.
				err = m.retry(ctx, mig.Source, exec)
			} else {
				err = exec()
			}
			if err != nil {
				return fail(s.Line, s.SQL, err)
			}
			if tracked && i+1 < len(stmts) {
				if err := mark(i + 1); err != nil {
					return fail(s.Line, s.SQL, err)
				}
			}
		}
	case KindGo:
		if err := m.runGo(ctx, q, conn, mig, dir, &r); err != nil {
			return fail(0, "", err)
		}
	default:
		return fail(0, "", &UnregisteredError{Version: mig.Version, File: mig.Source})
	}

	record := func(q dialect.Querier) error {
		if dir == Up {
			if err := m.dialect.InsertVersion(ctx, q, mig.Version); err != nil {
				return err
			}
			if mig.Checksum == "" {
				return nil
			}
			return m.dialect.PutRecord(ctx, q, m.record(mig, dialect.StateApplied, 0))
		}
		if err := m.dialect.DeleteVersion(ctx, q, mig.Version); err != nil {
			return err
		}
		return m.dialect.DeleteRecord(ctx, q, mig.Version)
	}
	var err error
	if conn != nil {
		err = m.inTx(ctx, conn, func(tx *sql.Tx) error { return record(tx) })
	} else {
		err = record(q)
	}
	if err != nil {
		return fail(0, "", fmt.Errorf("record version: %w", err))
	}
	r.Duration = time.Since(start)
	return r, nil
}

func (m *Migrator) runGo(ctx context.Context, q dialect.Querier, conn *sql.Conn, mig *Migration, dir Direction, r *MigrationResult) error {
	g := mig.gom
	if g.NoTx {
		fn := g.UpNoTx
		if dir == Down {
			fn = g.DownNoTx
		}
		r.Empty = fn == nil
		if fn == nil {
			return nil
		}
		if conn == nil {
			return fmt.Errorf("no-transaction Go migration cannot run inside a transaction")
		}
		return fn(ctx, conn)
	}
	fn := g.Up
	if dir == Down {
		fn = g.Down
	}
	r.Empty = fn == nil
	if fn == nil {
		return nil
	}
	tx, ok := q.(*sql.Tx)
	if !ok {
		return fmt.Errorf("transactional Go migration run without a transaction")
	}
	return fn(ctx, tx)
}

func (m *Migrator) logResults(rs []MigrationResult) {
	for _, r := range rs {
		m.log.Info(r.Direction.pastTense(), "version", r.Version, "file", r.Source, "duration", r.Duration.Round(time.Microsecond))
	}
}

// shorten keeps error messages readable when a statement is a whole
// function body.
func shorten(s string) string {
	const max = 200
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
