package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shiplock/shiplock/dialect"
)

// apply runs todo in the configured transaction mode. It returns what was
// committed, in order, and the first error.
func (m *Migrator) apply(ctx context.Context, conn *sql.Conn, todo []*Migration, dir Direction) ([]MigrationResult, error) {
	if m.stopRequested() {
		return nil, ErrStopped
	}
	if m.opts.TxMode == TxAll {
		var results []MigrationResult
		err := m.retry(ctx, "the run", func() error {
			results = results[:0]
			return m.inTx(ctx, conn, func(tx *sql.Tx) error {
				if err := applySettings(ctx, tx, m.settings(true, false)); err != nil {
					return err
				}
				// The version rows of the whole run go in with one query.
				var (
					applied  []dialect.Record
					reverted []int64
				)
				for _, mig := range todo {
					r, err := m.execute(ctx, tx, nil, mig, dir, 0)
					if err != nil {
						return err
					}
					results = append(results, r)
					applied = append(applied, m.record(mig, dialect.StateApplied, 0))
					reverted = append(reverted, mig.Version)
				}
				var err error
				if dir == Up {
					err = m.dialect.MarkApplied(ctx, tx, applied...)
				} else {
					err = m.dialect.MarkReverted(ctx, tx, reverted...)
				}
				if err != nil {
					return fmt.Errorf("record versions: %w", err)
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

	// Every migration's transaction but the last commits asynchronously:
	// each is still atomic (its version row commits with it), and the last
	// commit, synchronous, makes all of them durable at once; a run that
	// fails half-way flushes what it committed. A thousand fsyncs become one.
	results := make([]MigrationResult, 0, len(todo))
	async := false
	for i, mig := range todo {
		var (
			r   MigrationResult
			err error
		)
		if m.stopRequested() {
			return results, ErrStopped
		}
		if rec, ok := m.resumable[mig.Version]; ok && markerDirection(rec) == dir {
			// Interrupted half-way by a runner that is gone: go on from
			// where the marker and the catalog say.
			var first int
			if first, err = m.settle(ctx, conn, mig, rec, settleAuto, false); err == nil {
				m.log.Info("resuming an interrupted migration", "version", mig.Version, "file", mig.Source, "statement", first+1, "of", len(mig.Statements(dir)))
				r, err = m.runNoTx(ctx, conn, mig, dir, first)
			}
		} else if mig.NoTx || (m.opts.TxMode == TxNone && mig.Kind == KindSQL) {
			r, err = m.runNoTx(ctx, conn, mig, dir, 0)
		} else {
			last := i == len(todo)-1
			err = m.retry(ctx, mig.Source, func() error {
				if mig.Kind == KindSQL {
					r, err = m.runSQLTx(ctx, conn, mig, dir, !last)
					return err
				}
				return m.inTx(ctx, conn, func(tx *sql.Tx) error {
					if err := applySettings(ctx, tx, m.settings(true, !last)); err != nil {
						return err
					}
					r, err = m.runOne(ctx, tx, nil, mig, dir)
					return err
				})
			})
			async = async || (!last && err == nil)
		}
		if err != nil {
			if async {
				if ferr := m.dialect.Flush(context.WithoutCancel(ctx), conn); ferr != nil {
					m.log.Warn("flush committed migrations", "err", ferr)
				}
			}
			return results, err
		}
		m.logResults([]MigrationResult{r})
		results = append(results, r)
	}
	return results, nil
}

// runSQLTx runs a SQL migration in its own transaction as one script:
// open with shiplock's settings, the migration's statements, record the
// version and commit, in one round trip where the dialect can (the
// statements still run one by one on the server, and a failure still names
// its statement's line).
func (m *Migrator) runSQLTx(ctx context.Context, conn *sql.Conn, mig *Migration, dir Direction, async bool) (MigrationResult, error) {
	start := time.Now()
	r := MigrationResult{Version: mig.Version, Source: mig.Source, Direction: dir}
	stmts := mig.Statements(dir)
	r.Empty = len(stmts) == 0
	settings := m.settings(true, async)
	sqls := make([]string, len(stmts))
	for i, s := range stmts {
		sqls[i] = s.SQL
	}
	end := m.dialect.CommitRevertedSQL(mig.Version)
	if dir == Up {
		end = m.dialect.CommitAppliedSQL(m.record(mig, dialect.StateApplied, 0))
	}
	failed, err := m.dialect.ExecScript(ctx, conn, m.dialect.BeginSQL(settings), sqls, end)
	if err == nil {
		r.Duration = time.Since(start)
		return r, nil
	}
	// End the transaction whatever state it is in (a warning only when the
	// COMMIT itself failed and ended it).
	_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
	merr := &MigrationError{Version: mig.Version, File: mig.Source, Direction: dir, Err: err}
	switch {
	case failed < 0:
		merr.Err = fmt.Errorf("begin: %w", err)
	case failed >= len(stmts):
		merr.Err = fmt.Errorf("record version and commit: %w", err)
	default:
		merr.Line, merr.Statement = stmts[failed].Line, shorten(stmts[failed].SQL)
	}
	return r, merr
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
		if err := applySettings(ctx, conn, m.settings(false, false)); err != nil {
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

// settings are shiplock's own settings for one migration: the timeouts,
// for the transaction (local) or the session, and, with async,
// asynchronous commit.
func (m *Migrator) settings(local, async bool) []string {
	stmts := m.dialect.TimeoutStatements(m.opts.DDLLockTimeout, m.opts.StatementTimeout, local)
	if s := m.dialect.AsyncCommit(); local && async && s != "" {
		stmts = append(stmts, s)
	}
	return stmts
}

// applySettings sends settings in one round trip.
func applySettings(ctx context.Context, q dialect.Querier, stmts []string) error {
	if len(stmts) == 0 {
		return nil
	}
	query := strings.Join(stmts, "; ")
	if _, err := q.ExecContext(ctx, query); err != nil {
		return fmt.Errorf("set %s: %w", query, err)
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
	r, err := m.execute(ctx, q, conn, mig, dir, first)
	if err != nil {
		return r, err
	}
	record := func(q dialect.Querier) error {
		if dir == Up {
			return m.dialect.MarkApplied(ctx, q, m.record(mig, dialect.StateApplied, 0))
		}
		return m.dialect.MarkReverted(ctx, q, mig.Version)
	}
	if conn != nil {
		err = m.inTx(ctx, conn, func(tx *sql.Tx) error { return record(tx) })
	} else {
		err = record(q)
	}
	if err != nil {
		return r, &MigrationError{Version: mig.Version, File: mig.Source, Direction: dir, Err: fmt.Errorf("record version: %w", err)}
	}
	r.Duration = time.Since(start)
	return r, nil
}

// execute runs a migration's statements (or Go function) from statement
// first, without recording the version.
func (m *Migrator) execute(ctx context.Context, q dialect.Querier, conn *sql.Conn, mig *Migration, dir Direction, first int) (MigrationResult, error) {
	start := time.Now()
	r := MigrationResult{Version: mig.Version, Source: mig.Source, Direction: dir}
	fail := func(line int, stmt string, err error) (MigrationResult, error) {
		return r, &MigrationError{Version: mig.Version, File: mig.Source, Direction: dir, Line: line, Statement: shorten(stmt), Err: err}
	}
	// Outside a transaction each statement is recorded as started (with
	// the session's server process) before it is sent, and as done after:
	// a runner that dies leaves a marker that says which statement ran
	// and whether its outcome is known.
	tracked := conn != nil && mig.Kind == KindSQL
	markerState := dialect.StateApplying
	if dir == Down {
		markerState = dialect.StateReverting
	}
	stmts := mig.Statements(dir)
	mark := func(ctx context.Context, done int, inFlight bool) error {
		rec := m.record(mig, markerState, done)
		rec.InFlight, rec.Total = inFlight, len(stmts)
		if err := m.dialect.PutRecord(ctx, conn, rec); err != nil {
			return fmt.Errorf("record progress: %w", err)
		}
		return nil
	}

	switch mig.Kind {
	case KindSQL:
		r.Empty = len(stmts) == 0
		var pid int64
		if tracked {
			if err := mark(ctx, first, false); err != nil {
				return fail(0, "", err)
			}
			if c, ok := m.dialect.(dialect.Canceller); ok && m.opts.Stop != nil && first < len(stmts) {
				var err error
				if pid, err = c.BackendPID(ctx, conn); err != nil {
					return fail(0, "", err)
				}
			}
		}
		for i := first; i < len(stmts); i++ {
			s := stmts[i]
			if tracked && m.stopRequested() {
				return r, fmt.Errorf("%w: %s stopped after %d of %d statements (recorded; the next up goes on at line %d)", ErrStopped, mig.Source, i, len(stmts), s.Line)
			}
			exec := func() error { _, err := q.ExecContext(ctx, s.SQL); return err }
			var err error
			if tracked {
				if err := mark(ctx, i, true); err != nil {
					return fail(s.Line, s.SQL, err)
				}
				// Outside a transaction, retry the statement itself: the
				// ones before it are done.
				endWatch := m.graceWatch(ctx, pid)
				err = m.retry(ctx, mig.Source, exec)
				endWatch()
				if err == nil {
					err = m.checkIndexBuilt(ctx, q, s.SQL)
				}
				if err != nil {
					// A session that still answers has finished the
					// statement, and a failed statement in autocommit
					// left nothing (an INVALID index aside, which the
					// resume drops): its outcome is known. A session
					// that does not answer leaves it in flight.
					rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
					if merr := mark(rctx, i, false); merr != nil {
						m.log.Warn("the failed statement stays recorded as running", "file", mig.Source, "line", s.Line, "err", merr)
					}
					cancel()
					if m.stopRequested() {
						err = fmt.Errorf("%w (cancelled after the stop grace; recorded as not done): %w", ErrStopped, err)
					}
				}
			} else {
				err = exec()
			}
			if err != nil {
				return fail(s.Line, s.SQL, err)
			}
			if tracked {
				if err := mark(ctx, i+1, false); err != nil {
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
