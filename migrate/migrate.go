// Package migrate is shiplock's migration engine: it loads goose-format
// migrations, plans what to run from goose's version table, and applies or
// reverts them under a lock shared by every runner. Results come back as
// values; the engine logs only through the injected logger.
package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/shiplock/shiplock/dialect"
)

// Direction is up (apply) or down (revert).
type Direction int

const (
	Up Direction = iota
	Down
)

func (d Direction) String() string {
	if d == Down {
		return "down"
	}
	return "up"
}

func (d Direction) verb() string {
	if d == Down {
		return "revert"
	}
	return "apply"
}

func (d Direction) pastTense() string {
	if d == Down {
		return "reverted"
	}
	return "applied"
}

func (d Direction) progressive() string {
	if d == Down {
		return "reverting"
	}
	return "applying"
}

// TxMode says how migrations are wrapped in transactions.
type TxMode int

const (
	// TxFile runs each migration in its own transaction (goose's
	// behaviour); a NO TRANSACTION file runs outside one.
	TxFile TxMode = iota
	// TxAll runs every pending migration in one transaction: the deploy is
	// all-or-nothing. Refused when a planned migration is NO TRANSACTION.
	TxAll
	// TxNone runs every migration outside a transaction.
	TxNone
)

// ParseTxMode parses "file", "all" or "none".
func ParseTxMode(s string) (TxMode, error) {
	switch s {
	case "file", "":
		return TxFile, nil
	case "all":
		return TxAll, nil
	case "none":
		return TxNone, nil
	}
	return 0, fmt.Errorf("unknown transaction mode %q (want file, all or none)", s)
}

func (m TxMode) String() string {
	return [...]string{"file", "all", "none"}[m]
}

// Options configure a Migrator. The zero value is valid: per-file
// transactions, waiting for the lock until ctx ends, silent logging.
type Options struct {
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
	// TxMode is the transaction mode of Up and Down.
	TxMode TxMode
	// LockTimeout bounds the wait for the migration lock; 0 waits until
	// ctx is done.
	LockTimeout time.Duration
	// AllowOutOfOrder applies pending migrations older than the newest
	// applied one instead of refusing.
	AllowOutOfOrder bool
	// IgnoreChecksums lets Up run although applied files were edited.
	IgnoreChecksums bool
	// Strict makes a database ahead of the files (versions applied that no
	// file describes) an error for Up.
	Strict bool
	// DDLLockTimeout bounds how long each migration statement waits for a
	// table lock (PostgreSQL lock_timeout), so DDL stuck behind a long
	// transaction fails instead of queueing the live service's queries
	// behind it; 0 leaves the server's setting. It is set for the
	// migration's transaction only (SET LOCAL), or around a NO
	// TRANSACTION migration and restored after it.
	DDLLockTimeout time.Duration
	// StatementTimeout bounds each statement's run time; 0 leaves it.
	StatementTimeout time.Duration
	// LockRetries is how many times a migration that hit a lock timeout or
	// a deadlock is retried, with backoff, before the run fails.
	LockRetries int
	// RetryDelay is the first delay between such retries, doubled each
	// time; 0 means 500 ms.
	RetryDelay time.Duration
	// Stop, when closed, asks a run to stop (SIGTERM, as Kubernetes sends
	// on pod deletion): no further migration or statement starts, the one
	// running goes on (bound it by cancelling ctx after a grace period),
	// what completed is recorded, and the run returns an error wrapping
	// ErrStopped; the next run continues. A wait for the lock ends at
	// once. nil never stops.
	Stop <-chan struct{}
	// ProgressInterval is how often a long run logs what it is waiting
	// for: a statement that has run longer than this ("still running",
	// with its file:line and the sessions whose locks it waits for), and
	// the migration lock's holder. 0 means DefaultProgressInterval;
	// negative logs none of it.
	ProgressInterval time.Duration
	// Lock selects the migration lock: the session lock on a direct
	// connection, a lease behind a pooler (LockAuto).
	Lock LockMode
	// LockLease is the lease's length (0: DefaultLease): how long a
	// runner that vanished, or was paused, keeps others waiting. The
	// heartbeat renews it every quarter of it.
	LockLease time.Duration
	// StopGrace is how long a statement running outside a transaction may
	// go on after Stop closes; then it is cancelled on the server (on
	// PostgreSQL from a second session), so that the runner can still
	// record that it did not complete. 0 waits for it.
	StopGrace time.Duration
}

// Migrator runs migrations against one database. It is not safe for
// concurrent use; separate Migrators (processes, pods) coordinate through
// the database lock.
type Migrator struct {
	db         *sql.DB
	dialect    dialect.Dialect
	migrations []*Migration
	byVersion  map[int64]*Migration
	opts       Options
	log        *slog.Logger
	// resumable are the markers of migrations interrupted half-way,
	// read under the lock by the run in progress: apply resumes them.
	resumable map[int64]dialect.Record
	// current is the migration the run in progress is on.
	current *atomic.Pointer[running]
	// lease is the lease held by the run in progress, nil under the
	// session lock.
	lease *leaseLock
}

// New returns a Migrator for migrations (as returned by Load) on db.
func New(db *sql.DB, d dialect.Dialect, migrations []*Migration, opts Options) *Migrator {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	byVersion := make(map[int64]*Migration, len(migrations))
	for _, m := range migrations {
		byVersion[m.Version] = m
	}
	return &Migrator{db: db, dialect: d, migrations: migrations, byVersion: byVersion, opts: opts, log: log}
}

// Migrations returns the loaded migrations in version order.
func (m *Migrator) Migrations() []*Migration { return m.migrations }

// MigrationResult is one migration applied or reverted.
type MigrationResult struct {
	Version   int64
	Source    string
	Direction Direction
	Duration  time.Duration
	// Empty is true when the direction had no statements.
	Empty bool
}

// Result is the outcome of Up, Down or Redo.
type Result struct {
	// From and To are the current versions before and after the run.
	From, To int64
	Applied  []MigrationResult
	Duration time.Duration
	// Ahead lists applied versions that no file describes: the database is
	// ahead of the files (an older image runs against a newer schema).
	Ahead []int64
	// LockWait is how long the run waited for the migration lock.
	LockWait time.Duration
	// Unversioned is true for a run without versioning (UpUnversioned):
	// From and To are then not database versions; To is the last file run.
	Unversioned bool
	// Repaired are the interrupted versions that Repair settled, and
	// Repair what it did to them ("resumed", "forgotten", ...); empty for
	// the other runs.
	Repaired []int64
	Repair   string
}

// UpOptions select what Up applies. The zero value applies everything.
type UpOptions struct {
	// To stops after this version (0: the latest).
	To int64
	// ByOne applies only the next pending migration.
	ByOne bool
	// Check, when set, is called with the migrations the run plans to
	// apply, before the lock is taken and anything is applied; its error
	// ends the run. Nothing pending: it is not called.
	Check func(pending []*Migration) error
}

// Up applies pending migrations. When nothing is pending it returns after a
// read-only check, without taking the lock. Otherwise it takes the lock,
// re-reads the state and applies the plan.
func (m *Migrator) Up(ctx context.Context, o UpOptions) (*Result, error) {
	return m.run(ctx, func(st *state) ([]*Migration, error) { return m.planUp(st, o) }, Up, o.Check)
}

// Down reverts the newest applied migration, or with to >= 0 every applied
// migration newer than to. Use to < 0 for one step.
func (m *Migrator) Down(ctx context.Context, to int64) (*Result, error) {
	return m.run(ctx, func(st *state) ([]*Migration, error) { return m.planDown(st, to) }, Down, nil)
}

// Redo reverts the newest applied migration and applies it again.
func (m *Migrator) Redo(ctx context.Context) (*Result, error) {
	down, err := m.Down(ctx, -1)
	if err != nil {
		return down, err
	}
	if len(down.Applied) == 0 {
		return down, ErrNoCurrentVersion
	}
	up, err := m.Up(ctx, UpOptions{To: down.Applied[0].Version})
	if up != nil {
		up.From = down.From
		up.Applied = append(down.Applied, up.Applied...)
		up.Duration += down.Duration
	}
	return up, err
}

func (m *Migrator) run(ctx context.Context, plan func(*state) ([]*Migration, error), dir Direction, check func([]*Migration) error) (_ *Result, err error) {
	start := time.Now()
	conn, err := m.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()

	// Read-only fast path: an up-to-date pod start takes no lock.
	st, err := m.readState(ctx, conn)
	if err != nil {
		return nil, err
	}
	res := &Result{From: st.current, To: st.current, Ahead: m.ahead(st)}
	if st.otherTable != "" {
		return res, &OtherVersionTableError{Table: st.otherTable}
	}
	todo, err := plan(st)
	// Up also records the checksums of versions goose applied: on a
	// database goose migrated fully, nothing else would ever take the lock
	// to record them. Once they are there, the no-op start stays
	// read-only.
	work := func(st *state) bool {
		todo, err := plan(st)
		return err != nil || len(todo) > 0 || dir == Up && m.unrecorded(st)
	}
	if err != nil || len(todo) == 0 && !(dir == Up && m.unrecorded(st)) {
		res.Duration = time.Since(start)
		return res, err
	}
	if check != nil {
		if err := check(todo); err != nil {
			res.Duration = time.Since(start)
			return res, err
		}
	}
	if err := m.checkEncoding(ctx, conn, todo, dir); err != nil {
		return res, err
	}

	lockStart := time.Now()
	done, locked, lease, err := m.takeLock(ctx, conn, work)
	res.LockWait = time.Since(lockStart)
	if err != nil {
		return res, err
	}
	if !locked {
		// Another runner did everything while we waited.
		res.From, res.To, res.Ahead = done.current, done.current, m.ahead(done)
		res.Duration = time.Since(start)
		return res, nil
	}
	if lease != nil {
		m.leaseChecks(ctx, conn, todo, dir)
		var release func(*error)
		ctx, release = m.holdLease(ctx, lease)
		defer release(&err)
	} else {
		defer m.unlock(ctx, conn)
	}
	if m.opts.Stop != nil {
		// Say at once that the stop was heard: the run may take up to the
		// grace to end.
		running := make(chan struct{})
		defer close(running)
		go func() {
			select {
			case <-m.opts.Stop:
				m.log.Warn("stop requested: no further statement starts; the one running has the stop grace to finish (a second signal cancels it)", "grace", m.opts.StopGrace)
			case <-running:
			}
		}()
	}

	// Re-read under the lock: another runner may have moved the database.
	if st, err = m.readState(ctx, conn); err != nil {
		return res, err
	}
	if changed, err := m.prepare(ctx, conn, st); err != nil {
		return res, err
	} else if changed {
		if st, err = m.readState(ctx, conn); err != nil {
			return res, err
		}
	}
	res.From, res.Ahead = st.current, m.ahead(st)
	if todo, err = plan(st); err != nil {
		return res, err
	}
	if len(todo) == 0 { // only checksums to record: prepare did that
		res.To = st.current
		res.Duration = time.Since(start)
		return res, nil
	}
	if err := m.checkEncoding(ctx, conn, todo, dir); err != nil {
		return res, err
	}
	// Under the lock every marker's runner is gone.
	m.resumable = map[int64]dialect.Record{}
	for _, r := range st.interrupted() {
		m.resumable[r.Version] = r
	}
	defer func() { m.resumable = nil }()
	var cur atomic.Pointer[running]
	stopBeat := m.heartbeat(ctx, conn, &cur, todo, dir)
	m.current = &cur
	applied, err := m.apply(ctx, conn, todo, dir)
	stopBeat()
	m.current = nil
	res.Applied = applied
	// Computed, not re-read: a migration may have changed search_path, and
	// goose_db_version is found through it.
	res.To = st.after(applied)
	res.Duration = time.Since(start)
	if err != nil {
		return res, &PartialError{Applied: applied, Err: err}
	}
	return res, nil
}

// lock polls the dialect's try-lock with capped, jittered backoff. Between
// attempts it asks work about a fresh read: when another runner has already
// done all the work, it returns locked=false with that state and the caller
// stops without ever holding the lock. A nil work reads nothing and waits
// for the lock.
func (m *Migrator) lock(ctx context.Context, conn *sql.Conn, work func(*state) bool) (*state, bool, error) {
	if m.opts.LockTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, m.opts.LockTimeout)
		defer cancel()
	}
	const (
		first = 10 * time.Millisecond
		limit = 100 * time.Millisecond
		// A waiter woken by the holder needs no polling; it still looks
		// again this often, for a holder that died or never signals
		// (goose).
		signalled = time.Second
		// Any role that may connect can NOTIFY the release channel: at
		// most one re-check per recheckGap, however many signals arrive.
		recheckGap = 200 * time.Millisecond
	)
	delay := first
	lockStart := time.Now()
	// Name the holder once the wait is long enough to be worth a line,
	// and again every progress interval.
	every := m.progressEvery()
	lastReport := time.Now()
	waiter, canWait := m.dialect.(dialect.LockWaiter)
	if canWait {
		if err := waiter.ListenForRelease(ctx, conn); err != nil {
			canWait = false
		} else {
			defer waiter.StopListening(context.WithoutCancel(ctx), conn)
		}
	}
	for {
		ok, err := m.dialect.TryLock(ctx, conn)
		if err != nil {
			if ctx.Err() != nil {
				return nil, false, m.sessionLockCtxErr(ctx)
			}
			return nil, false, fmt.Errorf("acquire lock: %w", err)
		}
		if ok {
			return nil, true, nil
		}
		if every > 0 && time.Since(lastReport) >= every {
			holder, _ := m.dialect.LockHolder(ctx, conn)
			m.log.Info("waiting for the migration lock", "holder", holder, "waited", time.Since(lockStart).Round(time.Millisecond))
			lastReport = time.Now()
		}
		if canWait {
			lastCheck := time.Now()
			if err := waiter.WaitForRelease(ctx, conn, signalled); err != nil && ctx.Err() == nil {
				return nil, false, fmt.Errorf("wait for the lock: %w", err)
			}
			// Swallow the signals that come before the gap is over.
			for gap := recheckGap - time.Since(lastCheck); gap > 0 && ctx.Err() == nil; gap = recheckGap - time.Since(lastCheck) {
				if err := waiter.WaitForRelease(ctx, conn, gap); err != nil && ctx.Err() == nil {
					return nil, false, fmt.Errorf("wait for the lock: %w", err)
				}
			}
			if ctx.Err() != nil {
				return nil, false, m.sessionLockCtxErr(ctx)
			}
		} else {
			t := time.NewTimer(delay/2 + rand.N(delay/2+1))
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, false, m.sessionLockCtxErr(ctx)
			case <-t.C:
			}
			delay = min(delay*2, limit)
		}
		if work == nil {
			continue // a run that reads no version table (UpUnversioned)
		}
		st, err := m.readState(ctx, conn)
		if err != nil {
			if ctx.Err() != nil {
				return nil, false, m.sessionLockCtxErr(ctx)
			}
			return nil, false, err
		}
		if !work(st) {
			return st, false, nil
		}
	}
}

// takeLock is lock, or the lease where the connection needs it
// (chooseLock), ended by Options.Stop too. lease is nil under the session
// lock.
func (m *Migrator) takeLock(ctx context.Context, conn *sql.Conn, work func(*state) bool) (done *state, locked bool, lease *leaseLock, err error) {
	lctx, stopWait := m.stoppable(ctx)
	// Before any session state (LISTEN, SET, the session lock).
	if lease, err = m.chooseLock(lctx, conn); err == nil {
		done, locked, err = m.lockWith(lctx, conn, work, lease)
	}
	stopWait()
	if err != nil && errors.Is(context.Cause(lctx), ErrStopped) {
		err = fmt.Errorf("%w while waiting for the migration lock", ErrStopped)
	}
	return done, locked, lease, err
}

// stoppable returns ctx, cancelled with cause ErrStopped when Options.Stop
// closes, and the function that releases it.
func (m *Migrator) stoppable(ctx context.Context) (context.Context, func()) {
	if m.opts.Stop == nil {
		return ctx, func() {}
	}
	sctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		select {
		case <-m.opts.Stop:
			cancel(ErrStopped)
		case <-done:
		}
	}()
	return sctx, func() { close(done); cancel(nil) }
}

func (m *Migrator) unlock(ctx context.Context, conn *sql.Conn) {
	// A fresh context: the lock must go even when ctx was cancelled.
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := m.dialect.Unlock(uctx, conn); err != nil {
		m.log.Warn("release migration lock", "err", err)
	}
}

func (m *Migrator) lockCtxErr(ctx context.Context) error {
	if errors.Is(context.Cause(ctx), context.DeadlineExceeded) && m.opts.LockTimeout > 0 {
		return fmt.Errorf("%w (waited %s)", ErrLockTimeout, m.opts.LockTimeout)
	}
	return ctx.Err()
}

// sessionLockCtxErr is lockCtxErr naming the session that holds the lock,
// when the wait timed out: a --lock-timeout shorter than the first
// "waiting" report would otherwise never say who held it.
func (m *Migrator) sessionLockCtxErr(ctx context.Context) error {
	err := m.lockCtxErr(ctx)
	if !errors.Is(err, ErrLockTimeout) {
		return err
	}
	// On a fresh connection: a driver may close the waiting one when the
	// deadline cuts a query short (go-sql-driver/mysql does).
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	fresh, cerr := m.db.Conn(hctx)
	if cerr != nil {
		return err
	}
	defer fresh.Close()
	if holder, herr := m.dialect.LockHolder(hctx, fresh); herr == nil && holder != "" {
		return fmt.Errorf("%w (held by %s)", err, holder)
	}
	return err
}

// prepare creates goose's version table and shiplock_versions when
// missing, and records checksums for versions goose applied. It reports
// whether it changed anything.
func (m *Migrator) prepare(ctx context.Context, conn *sql.Conn, st *state) (bool, error) {
	changed := false
	if !st.tableExists {
		if err := m.inTx(ctx, conn, func(tx *sql.Tx) error { return m.dialect.CreateVersionTable(ctx, tx) }); err != nil {
			// A goose program that takes no lock (goose's CLI, goose.Up)
			// may create it at the same moment: PostgreSQL then fails ours
			// with 42P07, or 23505 on pg_type. Whatever the error, a table
			// that exists now is the one we wanted; as goose does, re-read.
			again, rerr := m.readState(ctx, conn)
			if rerr != nil || !again.tableExists {
				return false, fmt.Errorf("create %s: %w", m.dialect.VersionTable(), err)
			}
			m.log.Info("the version table was created by another program meanwhile", "table", m.dialect.VersionTable().String(), "err", err)
			st = again
		}
		changed = true
	}
	// Also for an existing table: it may lack the marker columns.
	if err := m.dialect.EnsureRecordTable(ctx, conn); err != nil {
		return false, fmt.Errorf("create or upgrade %s: %w", recordsTable(m.dialect), err)
	}
	changed = changed || !st.recordTableExists
	for v := range st.applied {
		mig := m.needsRecord(st, v)
		if mig == nil {
			continue
		}
		if err := m.dialect.PutRecord(ctx, conn, m.record(mig, dialect.StateApplied, 0)); err != nil {
			return false, fmt.Errorf("record checksum of %s: %w", mig.Source, err)
		}
		m.log.Info("recorded checksum of a version applied without shiplock", "version", v, "file", mig.Source)
		changed = true
	}
	return changed, nil
}

// needsRecord returns the file of applied version v when its checksum is
// not recorded (goose applied it), else nil.
func (m *Migrator) needsRecord(st *state, v int64) *Migration {
	mig := m.byVersion[v]
	if _, ok := st.records[v]; ok || mig == nil || mig.Checksum == "" {
		return nil
	}
	return mig
}

// unrecorded reports whether an applied version's checksum is missing.
func (m *Migrator) unrecorded(st *state) bool {
	for v := range st.applied {
		if m.needsRecord(st, v) != nil {
			return true
		}
	}
	return false
}

func (m *Migrator) record(mig *Migration, state string, statement int) dialect.Record {
	return dialect.Record{Version: mig.Version, Source: mig.Source, Checksum: mig.Checksum, State: state, Statement: statement}
}

func (m *Migrator) inTx(ctx context.Context, conn *sql.Conn, fn func(*sql.Tx) error) error {
	return m.dialect.InTx(ctx, conn, dialect.Settings{}, fn)
}

func (m *Migrator) ahead(st *state) []int64 {
	var out []int64
	for _, v := range st.appliedSorted {
		if v != 0 && m.byVersion[v] == nil {
			out = append(out, v)
		}
	}
	return out
}
