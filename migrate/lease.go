package migrate

import (
	"context"
	crand "crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/shiplock/shiplock/dialect"
)

// LockMode says which migration lock a run takes.
type LockMode int

const (
	// LockAuto takes the session lock on a connection proven direct, the
	// lease otherwise (a pooler, a proxy, anything unproven).
	LockAuto LockMode = iota
	// LockSession takes the session lock. On a connection not proven
	// direct it trusts the operator that every query reaches one server
	// session (PgBouncer pool_mode=session), and warns: no client can
	// prove that mode, and under transaction pooling the lock would stay
	// behind on a pooled server session.
	LockSession
	// LockLease takes the lease lock whatever the connection.
	LockLease
)

// ParseLockMode parses "auto", "session" or "lease".
func ParseLockMode(s string) (LockMode, error) {
	switch s {
	case "auto", "":
		return LockAuto, nil
	case "session":
		return LockSession, nil
	case "lease":
		return LockLease, nil
	}
	return 0, fmt.Errorf("unknown lock mode %q (want auto, session or lease)", s)
}

func (l LockMode) String() string { return [...]string{"auto", "session", "lease"}[l] }

// DefaultLease is the lease length when Options.LockLease is 0: goose's
// table locker's.
const DefaultLease = 30 * time.Second

// ErrLeaseLost: the run lost its lease (its heartbeat failed for the
// lease's length, or the lease expired while it was paused) and stopped,
// recording nothing after the loss. It is a stop: the next run continues.
var ErrLeaseLost = fmt.Errorf("%w: %w", ErrStopped, dialect.ErrLeaseLost)

// leaseLock is a run's lease and its heartbeat.
type leaseLock struct {
	dialect.Lease
	owner  string
	length time.Duration
	lost   atomic.Bool
	// takenAt is when the last successful take or renewal was sent: the
	// lease lasts at least its length from then, on any clock.
	takenAt time.Time
	stop    func()
}

// chooseLock decides, before any session state exists on conn, which lock
// the run takes: nil for the session lock, else a lease not taken yet.
func (m *Migrator) chooseLock(ctx context.Context, conn *sql.Conn) (*leaseLock, error) {
	l, can := m.dialect.(dialect.Leaser)
	if !can {
		if m.opts.Lock == LockLease {
			return nil, fmt.Errorf("the %s dialect has no lease lock", m.dialect.Name())
		}
		return nil, nil
	}
	if m.opts.Lock != LockLease {
		direct, why, err := l.Direct(ctx, conn)
		if err != nil {
			return nil, fmt.Errorf("check for a pooler: %w", err)
		}
		switch {
		case direct:
			return nil, nil
		case m.opts.Lock == LockSession:
			m.log.Warn("could not prove a direct connection (a pooler in front?): --lock session trusts that every query of this run reaches one server session, as PgBouncer pool_mode=session does; under transaction pooling the lock would be stranded", "why", why)
			return nil, nil
		}
		m.log.Info("connection not proven direct: taking the lease lock", "why", why)
	}
	length := m.opts.LockLease
	if length <= 0 {
		length = DefaultLease
	}
	host, _ := os.Hostname()
	token := make([]byte, 8)
	_, _ = crand.Read(token)
	owner := fmt.Sprintf("shiplock host=%s pid=%d token=%s", host, os.Getpid(), hex.EncodeToString(token))
	lease, err := l.Lease(ctx, conn, owner, length)
	if err != nil {
		return nil, fmt.Errorf("lease lock: %w", err)
	}
	return &leaseLock{Lease: lease, owner: owner, length: length}, nil
}

// lockWith waits for the lease (or, lease nil, the session lock) as lock
// does: jittered polling, re-planning between attempts, naming the holder.
func (m *Migrator) lockWith(ctx context.Context, conn *sql.Conn, work func(*state) bool, lease *leaseLock) (*state, bool, error) {
	if lease == nil {
		return m.lock(ctx, conn, work)
	}
	if m.opts.LockTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, m.opts.LockTimeout)
		defer cancel()
	}
	const first = 50 * time.Millisecond
	limit := min(lease.length/4, time.Second)
	delay := first
	lastReport := time.Now().Add(-8 * time.Second)
	for {
		sent := time.Now()
		ok, holder, err := lease.Take(ctx, conn)
		if err != nil {
			if ctx.Err() != nil {
				return nil, false, m.lockCtxErr(ctx)
			}
			return nil, false, fmt.Errorf("acquire lease: %w", err)
		}
		if ok {
			lease.takenAt = sent
			m.log.Info("holding the lease lock", "table", lease.Table(), "lease", lease.length, "owner", lease.owner)
			return nil, true, nil
		}
		if time.Since(lastReport) > 10*time.Second {
			m.log.Info("waiting for the migration lock", "holder", holder)
			lastReport = time.Now()
		}
		t := time.NewTimer(delay/2 + rand.N(delay/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, false, m.lockCtxErr(ctx)
		case <-t.C:
		}
		delay = min(delay*2, limit)
		if work == nil {
			continue // a run that reads no version table (UpUnversioned)
		}
		st, err := m.readState(ctx, conn)
		if err != nil {
			if ctx.Err() != nil {
				return nil, false, m.lockCtxErr(ctx)
			}
			return nil, false, err
		}
		if !work(st) {
			return st, false, nil
		}
	}
}

// holdLease starts the heartbeat and fences every progress write of the
// run: it returns ctx, cancelled (the statement in flight with it) once
// the lease is lost, and the release, which wraps the run's error in
// ErrLeaseLost when it was.
func (m *Migrator) holdLease(ctx context.Context, lease *leaseLock) (context.Context, func(*error)) {
	hctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		m.renewLease(hctx, lease, done, cancel)
	}()
	inner := m.dialect
	ic, _ := inner.(dialect.IndexChecker)
	ts, _ := inner.(dialect.TxStater)
	m.dialect = &fenced{Dialect: inner, IndexChecker: ic, TxStater: ts, lease: lease}
	m.lease = lease
	return hctx, func(errp *error) {
		close(done)
		<-finished
		m.dialect, m.lease = inner, nil
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer rcancel()
		// Was the lease lost, whatever the run's outcome? A fence said
		// so, or the lease is gone now: a runner paused past its lease,
		// resumed, may even have found nothing left to do.
		if !lease.lost.Load() && ((*errp != nil && isLeaseLost(inner, *errp)) || errors.Is(lease.Renew(rctx, m.db), dialect.ErrLeaseLost)) {
			lease.lost.Store(true)
		}
		if err := lease.Release(rctx, m.db); err != nil {
			m.log.Warn("release the lease lock", "err", err)
		}
		cancel(nil)
		switch {
		case !lease.lost.Load() || errors.Is(*errp, ErrLeaseLost):
		case *errp == nil:
			*errp = fmt.Errorf("%w during the run; what it applied was recorded while it held the lease", ErrLeaseLost)
		default:
			*errp = fmt.Errorf("%w; the run stopped: %w", ErrLeaseLost, *errp)
		}
	}
}

// isLeaseLost reports whether err is a fence's failure (a dialect that
// says so) or a failed renewal.
func isLeaseLost(d dialect.Dialect, err error) bool {
	if c, ok := d.(interface{ IsLeaseLost(error) bool }); ok {
		return c.IsLeaseLost(err)
	}
	return errors.Is(err, dialect.ErrLeaseLost)
}

// renewLease renews the lease every quarter of its length; it gives up,
// and cancels the run, when the server says the lease is gone or no
// renewal has succeeded for the lease's length.
func (m *Migrator) renewLease(ctx context.Context, lease *leaseLock, done <-chan struct{}, cancel context.CancelCauseFunc) {
	every := lease.length / 4
	wait := every
	for {
		t := time.NewTimer(wait)
		select {
		case <-done:
			t.Stop()
			return
		case <-t.C:
		}
		sent := time.Now()
		deadline := lease.takenAt.Add(lease.length)
		rctx, rcancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
		err := lease.Renew(rctx, m.db)
		rcancel()
		switch {
		case err == nil:
			lease.takenAt, wait = sent, every
			continue
		case errors.Is(err, dialect.ErrLeaseLost), !time.Now().Before(deadline):
			lease.lost.Store(true)
			m.log.Error("lost the migration lease: stopping the run, recording nothing more", "owner", lease.owner, "err", err)
			cancel(ErrLeaseLost)
			return
		}
		m.log.Warn("renew the migration lease", "err", err, "left", time.Until(deadline).Round(time.Millisecond))
		wait = min(every, max(time.Until(deadline)/4, 10*time.Millisecond))
	}
}

// fenced is the dialect under the lease: each write of progress runs in a
// transaction that first checks, with the lease's fence, that the lease
// is still ours; the markers read are never another runner's in progress
// (the lease is ours). No Canceller (a pooled backend's pid is anybody's)
// and no LockWaiter (no LISTEN through a pooler).
type fenced struct {
	dialect.Dialect
	dialect.IndexChecker
	dialect.TxStater
	lease *leaseLock
}

func (f *fenced) fence(ctx context.Context, q dialect.Querier, write func(dialect.Querier) error) error {
	if tx, ok := q.(*sql.Tx); ok {
		if _, err := tx.ExecContext(ctx, f.lease.Fence()); err != nil {
			return err
		}
		return write(tx)
	}
	conn, ok := q.(*sql.Conn)
	if !ok {
		return fmt.Errorf("lease: cannot fence a write on %T", q)
	}
	if f.InTxBlock(conn) {
		// Inside a file's own transaction block: the write commits with
		// the file's statements, under a check that does not hold the
		// lease's row till the file's COMMIT (the heartbeat needs it).
		if _, err := conn.ExecContext(ctx, f.lease.Check()); err != nil {
			return err
		}
		return write(conn)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f.fence(ctx, tx, write); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

func (f *fenced) CreateVersionTable(ctx context.Context, q dialect.Querier) error {
	return f.fence(ctx, q, func(q dialect.Querier) error { return f.Dialect.CreateVersionTable(ctx, q) })
}

func (f *fenced) PutRecord(ctx context.Context, q dialect.Querier, r dialect.Record) error {
	return f.fence(ctx, q, func(q dialect.Querier) error { return f.Dialect.PutRecord(ctx, q, r) })
}

func (f *fenced) DeleteRecord(ctx context.Context, q dialect.Querier, v int64) error {
	return f.fence(ctx, q, func(q dialect.Querier) error { return f.Dialect.DeleteRecord(ctx, q, v) })
}

// AppliedStatements and RevertedStatements start with the fence: they
// travel last in a migration's transaction (RunTx, or MarkApplied on a
// transaction), so the lease's row stays locked only from there to the
// commit, and a version is never recorded under a lost lease.
func (f *fenced) AppliedStatements(rs ...dialect.Record) []string {
	return f.withFence(f.Dialect.AppliedStatements(rs...))
}

func (f *fenced) RevertedStatements(versions ...int64) []string {
	return f.withFence(f.Dialect.RevertedStatements(versions...))
}

func (f *fenced) withFence(stmts []string) []string {
	if len(stmts) == 0 {
		return nil
	}
	return append([]string{f.lease.Fence()}, stmts...)
}

func (f *fenced) ListRecords(ctx context.Context, q dialect.Querier) ([]dialect.Record, error) {
	rs, err := f.Dialect.ListRecords(ctx, q)
	return notAlive(rs), err
}

func (f *fenced) ListAll(ctx context.Context, q dialect.Querier) ([]dialect.VersionRow, []dialect.Record, error) {
	vs, rs, err := f.Dialect.ListAll(ctx, q)
	return vs, notAlive(rs), err
}

// notAlive: while we hold the lease, no other runner is in progress.
func notAlive(rs []dialect.Record) []dialect.Record {
	for i := range rs {
		rs[i].Alive = false
	}
	return rs
}

// leaseChecks warns, under the lease, about what a transaction pooler
// changes for todo: a session SET in a file leaks to the pooler's other
// clients and does not carry to the next file; statements outside a
// transaction get only the role's own timeouts.
func (m *Migrator) leaseChecks(ctx context.Context, conn *sql.Conn, todo []*Migration, dir Direction) {
	noTx := false
	for _, mig := range todo {
		if mig.Kind != KindSQL {
			noTx = noTx || mig.NoTx
			continue
		}
		noTx = noTx || mig.NoTx || m.opts.TxMode == TxNone
		for _, s := range mig.Statements(dir) {
			if sessionSet(s.SQL) {
				m.log.Warn("a session SET through a transaction pooler reaches one pooled server session: it does not carry to the next statement or file, and leaks into other clients' transactions; use SET LOCAL inside the migration's transaction",
					"file", mig.Source, "line", s.Line)
			}
		}
	}
	if !noTx || (m.opts.DDLLockTimeout <= 0 && m.opts.StatementTimeout <= 0) {
		return
	}
	l, ok := m.dialect.(dialect.Leaser)
	if !ok {
		return
	}
	lock, stmt, err := l.RoleTimeouts(ctx, conn)
	if err != nil {
		m.log.Warn("read the role's timeouts", "err", err)
		return
	}
	if (m.opts.DDLLockTimeout > 0 && !lock) || (m.opts.StatementTimeout > 0 && !stmt) {
		m.log.Warn("under the lease, statements outside a transaction (NO TRANSACTION) run without shiplock's lock and statement timeouts (a session SET would leak through the pooler); the role sets none: ALTER ROLE ... SET lock_timeout = '...'",
			"role_lock_timeout", lock, "role_statement_timeout", stmt)
	}
}

// sessionSet reports whether stmt is a SET that changes the session (not
// SET LOCAL, SET TRANSACTION, SET CONSTRAINTS).
func sessionSet(stmt string) bool {
	toks, _ := lex(stmt, 2)
	if len(toks) == 0 || toks[0].quoted || toks[0].text != "SET" {
		return false
	}
	if len(toks) < 2 {
		return true
	}
	switch strings.ToUpper(toks[1].text) {
	case "LOCAL", "TRANSACTION", "CONSTRAINTS":
		return false
	}
	return true
}

// ClientEncoding passes the dialect's through (checkEncoding).
func (f *fenced) ClientEncoding(ctx context.Context, conn *sql.Conn) (string, error) {
	if ce, ok := f.Dialect.(clientEncoder); ok {
		return ce.ClientEncoding(ctx, conn)
	}
	return "", nil
}
