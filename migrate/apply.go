package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/shiplock/shiplock/dialect"
	"github.com/shiplock/shiplock/migrate/sqlfile"
)

// apply runs todo in the configured transaction mode. It returns what was
// committed and made durable, in order, and the first error.
func (m *Migrator) apply(ctx context.Context, conn *sql.Conn, todo []*Migration, dir Direction) ([]MigrationResult, error) {
	if m.stopRequested() {
		return nil, ErrStopped
	}
	if m.opts.TxMode == TxAll {
		for _, mig := range todo {
			m.starting(mig, dir)
		}
		var results []MigrationResult
		gctx, release := m.graceContext(ctx)
		err := m.retry(gctx, "the run", func() error {
			var err error
			results, err = m.runAll(gctx, conn, todo, dir)
			return err
		})
		err = stoppedErr(gctx, err)
		release()
		if err != nil {
			return nil, err
		}
		m.logResults(results)
		return results, nil
	}

	// A migration's transaction commits asynchronously unless it is the
	// last one or the last durable point is durableEvery old: each is
	// still atomic (its version row commits with it), and a synchronous
	// commit makes every earlier one durable. What is reported (the
	// "applied" lines, the results) is only what is durable: a server
	// crash cannot take back a version shiplock said it applied.
	results := make([]MigrationResult, 0, len(todo))
	durable := 0 // results[:durable] are known durable
	lastDurable := time.Now()
	report := func() {
		m.logResults(results[durable:])
		durable = len(results)
		lastDurable = time.Now()
	}
	for i, mig := range todo {
		var (
			r   MigrationResult
			err error
		)
		async := i < len(todo)-1 && time.Since(lastDurable) < durableEvery
		if !m.stopRequested() {
			m.starting(mig, dir)
		}
		rec, resume := m.resumable[mig.Version]
		switch {
		case m.stopRequested():
			err = ErrStopped
		case resume && markerDirection(rec) == dir:
			// Interrupted half-way by a runner that is gone: go on from
			// where the marker and the catalog say.
			var first int
			if first, err = m.settle(ctx, conn, mig, rec, settleAuto, false); err == nil {
				m.log.Info("resuming an interrupted migration", "version", mig.Version, "file", mig.Source, "statement", first+1, "of", len(mig.Statements(dir)))
				r, err = m.runNoTx(ctx, conn, mig, dir, first)
			}
			async = false // its bookkeeping commits synchronously
		case mig.NoTx || (m.opts.TxMode == TxNone && mig.Kind == KindSQL):
			r, err = m.runNoTx(ctx, conn, mig, dir, 0)
			async = false // its bookkeeping commits synchronously
		case mig.Kind == KindSQL && hasTxControl(mig.Statements(dir)):
			r, err = m.runOwnTx(ctx, conn, mig, dir)
			async = false
		case m.stepwise(mig, dir):
			// A transaction around it would be false safety (MySQL
			// commits around DDL): statement by statement, each one's
			// progress recorded, as for NO TRANSACTION.
			r, err = m.runNoTx(ctx, conn, mig, dir, 0)
			async = false
		default:
			gctx, release := m.graceContext(ctx)
			err = m.retry(gctx, mig.Source, func() error {
				if mig.Kind == KindSQL {
					r, err = m.runSQLTx(gctx, conn, mig, dir, async)
					return err
				}
				return m.dialect.InTx(gctx, conn, m.txSettings(async), func(tx *sql.Tx) error {
					var err error
					r, err = m.runOne(gctx, tx, nil, mig, dir)
					return err
				})
			})
			err = stoppedErr(gctx, err)
			release()
		}
		if err != nil {
			if durable < len(results) {
				if ferr := m.dialect.Flush(context.WithoutCancel(ctx), conn); ferr != nil {
					// Committed, but a crash may still take them back:
					// report only what is known durable.
					m.log.Warn("committed migrations not confirmed durable; the next run shows what stayed", "count", len(results)-durable, "err", ferr)
					return results[:durable], err
				}
				report()
			}
			return results, err
		}
		results = append(results, r)
		if !async {
			report()
		}
	}
	return results, nil
}

// durableEvery bounds how long applied migrations go unreported: after
// that, the next commit is synchronous (one WAL flush covers every
// asynchronous commit before it; PostgreSQL's WAL writer flushes them
// about as often anyway).
const durableEvery = 200 * time.Millisecond

// runAll runs every migration of todo in one transaction. SQL-only runs
// go to the dialect's statement runner in one piece (every statement its
// own query, pipelined); a run with Go migrations steps through a
// database/sql transaction.
func (m *Migrator) runAll(ctx context.Context, conn *sql.Conn, todo []*Migration, dir Direction) ([]MigrationResult, error) {
	start := time.Now()
	results := make([]MigrationResult, 0, len(todo))
	var (
		applied  []dialect.Record
		reverted []int64
	)
	for _, mig := range todo {
		applied = append(applied, m.record(mig, dialect.StateApplied, 0))
		reverted = append(reverted, mig.Version)
	}
	allSQL := true
	for _, mig := range todo {
		allSQL = allSQL && mig.Kind == KindSQL
	}
	if !allSQL {
		err := m.dialect.InTx(ctx, conn, m.txSettings(false), func(tx *sql.Tx) error {
			for _, mig := range todo {
				r, err := m.execute(ctx, tx, nil, mig, dir, 0)
				if err != nil {
					return err
				}
				results = append(results, r)
			}
			var err error
			if dir == Up {
				err = dialect.MarkApplied(ctx, m.dialect, tx, applied...)
			} else {
				err = dialect.MarkReverted(ctx, m.dialect, tx, reverted...)
			}
			if err != nil {
				return fmt.Errorf("record versions: %w", err)
			}
			return nil
		})
		return results, err
	}
	var (
		sqls  []string
		owner []*Migration // owner[i] ran sqls[i]
		index []int        // its index in owner's statements
	)
	for _, mig := range todo {
		stmts := mig.Statements(dir)
		for i, s := range stmts {
			sqls = append(sqls, s.SQL)
			owner = append(owner, mig)
			index = append(index, i)
		}
		results = append(results, MigrationResult{Version: mig.Version, Source: mig.Source, Direction: dir, Empty: len(stmts) == 0})
	}
	if dir == Up {
		sqls = append(sqls, m.dialect.AppliedStatements(applied...)...)
	} else {
		sqls = append(sqls, m.dialect.RevertedStatements(reverted...)...)
	}
	err := m.dialect.RunTx(ctx, conn, m.txSettings(false), sqls)
	if err == nil {
		// One transaction: each migration's share of it is not measured.
		for i := range results {
			results[i].Duration = time.Since(start) / time.Duration(len(results))
		}
		return results, nil
	}
	var terr *dialect.TxError
	if !errors.As(err, &terr) || terr.Index < 0 || terr.Index >= len(owner) {
		what := "begin"
		if terr != nil && terr.Index >= 0 {
			what = "record versions and commit"
		}
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	mig := owner[terr.Index]
	return nil, m.statementError(mig, dir, mig.Statements(dir)[index[terr.Index]], terr)
}

// runSQLTx runs a SQL migration in its own transaction through the
// dialect's statement runner: open with shiplock's settings, the
// migration's statements (each its own query), the version's record, and
// commit, pipelined where the dialect can (a failure still names its
// statement's line).
func (m *Migrator) runSQLTx(ctx context.Context, conn *sql.Conn, mig *Migration, dir Direction, async bool) (MigrationResult, error) {
	start := time.Now()
	r := MigrationResult{Version: mig.Version, Source: mig.Source, Direction: dir}
	stmts := mig.Statements(dir)
	r.Empty = len(stmts) == 0
	var record []string
	if dir == Up {
		record = m.dialect.AppliedStatements(m.record(mig, dialect.StateApplied, 0))
	} else {
		record = m.dialect.RevertedStatements(mig.Version)
	}
	sqls := make([]string, len(stmts), len(stmts)+len(record))
	for i, s := range stmts {
		sqls[i] = s.SQL
	}
	sqls = append(sqls, record...)
	err := m.dialect.RunTx(ctx, conn, m.txSettings(async), sqls)
	if err == nil {
		r.Duration = time.Since(start)
		return r, nil
	}
	merr := &MigrationError{Version: mig.Version, File: mig.Source, Direction: dir, Err: err}
	var terr *dialect.TxError
	switch {
	case !errors.As(err, &terr) || terr.Index < 0:
		merr.Err = fmt.Errorf("begin: %w", err)
	case terr.Index >= len(sqls):
		merr.Err = fmt.Errorf("commit: %w", err)
	case terr.Index >= len(stmts):
		merr.Err = fmt.Errorf("record version: %w", err)
	default:
		return r, m.statementError(mig, dir, stmts[terr.Index], terr)
	}
	return r, merr
}

// statementError names the failing statement of mig, its first line,
// and where in it the database saw the error.
func (m *Migrator) statementError(mig *Migration, dir Direction, s sqlfile.Statement, terr *dialect.TxError) *MigrationError {
	merr := &MigrationError{Version: mig.Version, File: mig.Source, Direction: dir, Line: s.Line, Statement: shorten(s.SQL), Err: terr.Err}
	if terr.Position > 0 {
		// Position counts characters from 1.
		line, col := s.Line, 1
		for i, c := range []rune(s.SQL) {
			if i+1 >= terr.Position {
				break
			}
			if c == '\n' {
				line, col = line+1, 1
			} else {
				col++
			}
		}
		merr.Err = fmt.Errorf("%w (at line %d, column %d)", terr.Err, line, col)
	}
	return merr
}

// runNoTx runs a migration outside a transaction from statement first,
// with shiplock's timeouts set on the session around it and restored after.
func (m *Migrator) runNoTx(ctx context.Context, conn *sql.Conn, mig *Migration, dir Direction, first int) (MigrationResult, error) {
	var r MigrationResult
	err := m.dialect.WithSession(ctx, conn, m.sessionSettings(), func() error {
		var err error
		r, err = m.runFrom(ctx, conn, conn, mig, dir, first)
		var merr *MigrationError
		if ic, ok := m.dialect.(dialect.IndexChecker); ok && errors.As(err, &merr) {
			merr.InvalidIndexes, _ = ic.InvalidIndexes(context.WithoutCancel(ctx), conn)
		}
		return err
	})
	return r, err
}

// txSettings are shiplock's settings for one migration's transaction:
// the timeouts and, with async, asynchronous commit.
func (m *Migrator) txSettings(async bool) dialect.Settings {
	return dialect.Settings{LockTimeout: m.opts.DDLLockTimeout, StatementTimeout: m.opts.StatementTimeout, AsyncCommit: async}
}

// sessionSettings are shiplock's timeouts for statements run outside a
// transaction; none under the lease, where a session SET would leak
// through the pooler (see leaseChecks).
func (m *Migrator) sessionSettings() dialect.Settings {
	if m.lease != nil {
		return dialect.Settings{}
	}
	return m.txSettings(false)
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
			return dialect.MarkApplied(ctx, m.dialect, q, m.record(mig, dialect.StateApplied, 0))
		}
		return dialect.MarkReverted(ctx, m.dialect, q, mig.Version)
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
	outside := 0 // statements done outside a transaction before a failure
	fail := func(line int, stmt string, err error) (MigrationResult, error) {
		return r, &MigrationError{Version: mig.Version, File: mig.Source, Direction: dir, Line: line, Statement: shorten(stmt), Err: err, OutsideTx: outside}
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
	markOn := func(ctx context.Context, q dialect.Querier, done int, inFlight bool) error {
		rec := m.record(mig, markerState, done)
		rec.InFlight, rec.Total = inFlight, len(stmts)
		if err := m.dialect.PutRecord(ctx, q, rec); err != nil {
			return fmt.Errorf("record progress: %w", err)
		}
		return nil
	}
	mark := func(ctx context.Context, done int, inFlight bool) error { return markOn(ctx, conn, done, inFlight) }
	// In a file run statement by statement because others commit by
	// themselves, a data statement commits with the record that it is
	// done, in one transaction: a crash leaves it done or not, never
	// uncertain, and a deadlock rolls back and retries it whole.
	stepwise := tracked && m.stepwise(mig, dir)

	switch mig.Kind {
	case KindSQL:
		r.Empty = len(stmts) == 0
		var pid int64
		// A statement's "done" record is folded into the next statement's
		// "started" one when that follows at once: one write instead of
		// two, and a runner that dies in between leaves what it would
		// have left a moment earlier (the statement before in flight,
		// settled as after any crash). deferred is the count of statements
		// done whose record waits for that write; -1 when none waits.
		deferred := -1
		flush := func(ctx context.Context) error {
			if deferred < 0 {
				return nil
			}
			err := mark(ctx, deferred, false)
			deferred = -1
			return err
		}
		if tracked {
			// A fresh start needs no record before its first statement
			// records itself as started; a resume or a repair writes it
			// now, and so does a stepwise file whose first statement is a
			// data statement (it records itself only when done), so that
			// status and check see the migration in progress meanwhile.
			_, known := m.resumable[mig.Version]
			dataFirst := stepwise && first < len(stmts) && !m.commitsItself(stmts[first].SQL)
			if m.resumable == nil || known || first > 0 || dataFirst {
				if err := mark(ctx, first, false); err != nil {
					return fail(0, "", err)
				}
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
				if err := flush(ctx); err != nil {
					outside = i
					return fail(s.Line, s.SQL, err)
				}
				if m.inTxBlock(conn) {
					return r, fmt.Errorf("%w: %s stopped after %d of %d statements, inside its transaction (rolled back; the next up runs it again)", ErrStopped, mig.Source, i, len(stmts))
				}
				return r, fmt.Errorf("%w: %s stopped after %d of %d statements (recorded; the next up goes on at line %d)", ErrStopped, mig.Source, i, len(stmts), s.Line)
			}
			exec := func() error { _, err := q.ExecContext(ctx, s.SQL); return err }
			var (
				err    error
				atomic bool // run with its done record in one transaction
			)
			if tracked {
				// A file that holds its own COMMIT starts inside the block
				// goose opens: there the records commit or roll back with
				// the statements, and a failed statement aborts the block.
				inBlock := m.inTxBlock(conn)
				atomic = stepwise && !inBlock && !m.commitsItself(s.SQL)
				if !atomic {
					deferred = -1 // this record says the statements before are done
					if err := mark(ctx, i, true); err != nil {
						if !inBlock {
							outside = i // the statements before it stay
						}
						return fail(s.Line, s.SQL, err)
					}
				} else if err := flush(ctx); err != nil {
					outside = i
					return fail(s.Line, s.SQL, err)
				}
				endWatch := m.graceWatch(ctx, pid)
				switch {
				case inBlock:
					// No retry: the block is aborted after a failure.
					err = exec()
				case atomic:
					err = m.retry(ctx, mig.Source, func() error {
						return m.inTx(ctx, conn, func(tx *sql.Tx) error {
							if _, err := tx.ExecContext(ctx, s.SQL); err != nil {
								return err
							}
							return markOn(ctx, tx, i+1, false)
						})
					})
				default:
					// Outside a transaction, retry the statement itself:
					// the ones before it are done.
					err = m.retry(ctx, mig.Source, m.indexBuild(ctx, q, s.SQL, exec))
				}
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
					// Inside a failed block there is nothing to record: the
					// ROLLBACK takes the marker away with the statements.
					if !m.inTxBlock(conn) {
						outside = i
						rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
						if merr := mark(rctx, i, false); merr != nil {
							m.log.Warn("the failed statement stays recorded as running", "file", mig.Source, "line", s.Line, "err", merr)
						}
						cancel()
					}
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
			if tracked && !atomic && i+1 < len(stmts) {
				deferred = i + 1
			} else if tracked && !atomic {
				if err := mark(ctx, i+1, false); err != nil {
					if !m.inTxBlock(conn) {
						outside = i + 1 // it and the statements before it stay
					}
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

// graceContext returns ctx, cancelled with cause ErrStopped once
// Options.StopGrace has passed after Options.Stop closed: a migration's
// transaction in flight when the stop comes gets the grace to commit, then
// is cancelled and rolls back whole.
func (m *Migrator) graceContext(ctx context.Context) (context.Context, func()) {
	if m.opts.Stop == nil || m.opts.StopGrace <= 0 {
		return ctx, func() {}
	}
	gctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		if m.graceOver(done) {
			m.log.Warn("stop: the migration in flight outlasted its grace, rolling it back", "grace", m.opts.StopGrace)
			cancel(ErrStopped)
		}
	}()
	return gctx, func() { close(done); cancel(nil) }
}

// stoppedErr marks err as a stop when gctx was cancelled by the grace.
func stoppedErr(gctx context.Context, err error) error {
	if err != nil && !errors.Is(err, ErrStopped) && errors.Is(context.Cause(gctx), ErrStopped) {
		return fmt.Errorf("%w (cancelled after the stop grace; rolled back): %w", ErrStopped, err)
	}
	return err
}

// indexBuild wraps exec, the running of stmt outside a transaction. For a
// CREATE INDEX CONCURRENTLY it lifts the DDL lock timeout around the
// statement (the build blocks no read or write, and waits for older
// transactions, which a lock timeout would make fail), and before a retry
// it drops the INVALID index a failed attempt left (else the retry fails
// with "already exists").
func (m *Migrator) indexBuild(ctx context.Context, q dialect.Querier, stmt string, exec func() error) func() error {
	ic, ok := m.dialect.(dialect.IndexChecker)
	if !ok {
		return exec
	}
	table, name, ok := concurrentIndex(stmt)
	if !ok {
		return exec
	}
	attempt := 0
	return func() error {
		if attempt++; attempt > 1 {
			qualified, valid, err := ic.IndexValidity(ctx, q, table, name)
			if err != nil {
				return fmt.Errorf("look up index %s: %w", name, err)
			}
			if qualified != "" && !valid {
				m.log.Info("dropping the INVALID index the failed attempt left, to build it again", "index", qualified)
				if err := ic.DropIndex(ctx, q, qualified); err != nil {
					return fmt.Errorf("drop INVALID index %s: %w", qualified, err)
				}
			}
		}
		if m.opts.DDLLockTimeout <= 0 || m.lease != nil {
			return exec()
		}
		return ic.WithoutLockTimeout(ctx, q, exec)
	}
}

// inTxBlock reports whether conn is inside a transaction block, as far as
// the dialect can tell without a round trip.
func (m *Migrator) inTxBlock(conn *sql.Conn) bool {
	ts, ok := m.dialect.(dialect.TxStater)
	return ok && conn != nil && ts.InTxBlock(conn)
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
