package migrate

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// UpUnversioned applies migrations as goose's -no-versioning does: chosen
// by the files alone, in version order, never reading or writing
// goose_db_version or shiplock_versions (neither is created). With o.To
// it applies every file up to and including that version; with o.ByOne
// only the first file, every time (goose's up-by-one). Nothing records
// what ran: running it twice runs the files twice.
//
// Unlike goose it takes the migration lock first (it changes no table),
// so it never interleaves with another runner's migrations.
func (m *Migrator) UpUnversioned(ctx context.Context, o UpOptions) (*Result, error) {
	var todo []*Migration
	for _, mig := range m.migrations {
		if o.To > 0 && mig.Version > o.To {
			break
		}
		todo = append(todo, mig)
		if o.ByOne {
			break
		}
	}
	return m.runUnversioned(ctx, todo, Up)
}

// DownUnversioned reverts migrations as goose's -no-versioning does: with
// to < 0 the newest file only, else every file newer than to, newest
// first. Like UpUnversioned it records nothing.
func (m *Migrator) DownUnversioned(ctx context.Context, to int64) (*Result, error) {
	var todo []*Migration
	for i := len(m.migrations) - 1; i >= 0; i-- {
		mig := m.migrations[i]
		if to >= 0 && mig.Version <= to {
			break
		}
		todo = append(todo, mig)
		if to < 0 {
			break
		}
	}
	return m.runUnversioned(ctx, todo, Down)
}

// RedoUnversioned reverts the newest file and applies it again, as goose's
// redo -no-versioning does.
func (m *Migrator) RedoUnversioned(ctx context.Context) (*Result, error) {
	down, err := m.DownUnversioned(ctx, -1)
	if err != nil || len(down.Applied) == 0 {
		return down, err
	}
	newest := m.migrations[len(m.migrations)-1]
	up, err := m.runUnversioned(ctx, []*Migration{newest}, Up)
	if up != nil {
		up.Applied = append(down.Applied, up.Applied...)
		up.Duration += down.Duration
	}
	return up, err
}

func (m *Migrator) runUnversioned(ctx context.Context, todo []*Migration, dir Direction) (_ *Result, err error) {
	start := time.Now()
	res := &Result{Unversioned: true}
	if err := m.checkRunnable(todo, dir); err != nil || len(todo) == 0 {
		return res, err
	}
	conn, err := m.db.Conn(ctx)
	if err != nil {
		return res, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	if err := m.checkEncoding(ctx, conn, todo, dir); err != nil {
		return res, err
	}
	_, _, lease, err := m.takeLock(ctx, conn, nil)
	res.LockWait = time.Since(start)
	if err != nil {
		return res, err
	}
	if lease != nil {
		var release func(*error)
		ctx, release = m.holdLease(ctx, lease)
		defer release(&err)
	} else {
		defer m.unlock(ctx, conn)
	}
	for _, mig := range todo {
		if m.stopRequested() {
			err = ErrStopped
			break
		}
		var r MigrationResult
		if r, err = m.runUnversionedOne(ctx, conn, mig, dir); err != nil {
			break
		}
		m.logResults([]MigrationResult{r})
		res.Applied = append(res.Applied, r)
		res.To = mig.Version
	}
	res.Duration = time.Since(start)
	if err != nil {
		return res, &PartialError{Applied: res.Applied, Err: err}
	}
	return res, nil
}

// runUnversionedOne runs one migration as goose does without versioning:
// in a transaction of its own (a SQL file's statements one by one, as
// goose sends them), or outside one for NO TRANSACTION (and --tx-mode
// none) and for a file whose statements commit by themselves (MySQL
// DDL), with no progress marker.
func (m *Migrator) runUnversionedOne(ctx context.Context, conn *sql.Conn, mig *Migration, dir Direction) (MigrationResult, error) {
	if mig.NoTx || (m.opts.TxMode == TxNone && mig.Kind == KindSQL) || m.stepwise(mig, dir) {
		var r MigrationResult
		err := m.dialect.WithSession(ctx, conn, m.sessionSettings(), func() error {
			var err error
			if mig.Kind == KindSQL {
				r, err = m.execute(ctx, conn, nil, mig, dir, 0)
				return err
			}
			r = MigrationResult{Version: mig.Version, Source: mig.Source, Direction: dir}
			return m.runGo(ctx, conn, conn, mig, dir, &r)
		})
		return r, err
	}
	var r MigrationResult
	gctx, release := m.graceContext(ctx)
	defer release()
	err := m.retry(gctx, mig.Source, func() error {
		return m.dialect.InTx(gctx, conn, m.txSettings(false), func(tx *sql.Tx) error {
			var err error
			r, err = m.execute(gctx, tx, nil, mig, dir, 0)
			return err
		})
	})
	return r, stoppedErr(gctx, err)
}
