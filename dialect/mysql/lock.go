package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/shiplock/shiplock/dialect"
)

// GooseLockTable and GooseLockID are goose's MySQL table locker's defaults
// (goose v3.30.0, lock.NewMySQLTableLocker): a row of this table, in the
// version table's schema, whose lease has not expired holds the lock too.
const (
	GooseLockTable       = "goose_lock"
	GooseLockID    int64 = 4097083626
)

var (
	// ErrNoDatabase: the lock is per database, and the connection selected
	// none (and the version table is unqualified).
	ErrNoDatabase = errors.New("mysql: no database selected: the migration lock is per database")
	// ErrNotLocked is Unlock's error when the lock is held by another
	// session, or by none.
	ErrNotLocked = errors.New("mysql: the migration lock was not held by this session")
)

const (
	qTryLock = `SELECT {s} IS NULL, IF({s} IS NULL, NULL, GET_LOCK({lock}, 0)),
		EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = {s} AND table_name = '` + GooseLockTable + `')`
	// The lease as goose's locker reads it: its timestamps are its
	// session's NOW(6).
	qGooseLease = `SELECT COALESCE(locked_by, ''), TIMESTAMPDIFF(SECOND, NOW(6), lease_expires_at) FROM %s
		WHERE lock_id = %d AND locked AND lease_expires_at > NOW(6)`
	qUnlock     = `SELECT RELEASE_LOCK({lock})`
	qLockHolder = `SELECT l.id, p.USER, p.HOST, p.COMMAND, p.TIME, p.STATE,
		EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = {s} AND table_name = '` + GooseLockTable + `')
		FROM (SELECT IS_USED_LOCK({lock}) AS id) l LEFT JOIN information_schema.PROCESSLIST p ON p.ID = l.id`
)

var _ dialect.Locker = Dialect{}

// TryLock takes GET_LOCK(name, 0): it never waits, so the engine's bounded
// polling is the only wait, as on PostgreSQL. A live goose table-locker
// lease in the version table's schema holds the lock too: TryLock then
// releases what it took and reports false.
func (d Dialect) TryLock(ctx context.Context, conn *sql.Conn) (bool, error) {
	var (
		noDB, leaseTable bool
		got              sql.NullInt64
	)
	if err := conn.QueryRowContext(ctx, d.sql(qTryLock)).Scan(&noDB, &got, &leaseTable); err != nil {
		return false, err
	}
	switch {
	case noDB:
		return false, ErrNoDatabase
	case !got.Valid:
		return false, errors.New("mysql: GET_LOCK failed")
	case got.Int64 == 0 || !leaseTable:
		return got.Int64 == 1, nil
	}
	if by, _, err := d.gooseLease(ctx, conn); err != nil || by != "" {
		return false, errors.Join(err, d.Unlock(ctx, conn))
	}
	return true, nil
}

// gooseLease returns the holder of a live goose table-locker lease and the
// seconds left, "" when none.
func (d Dialect) gooseLease(ctx context.Context, q dialect.Querier) (by string, left int64, err error) {
	err = q.QueryRowContext(ctx, fmt.Sprintf(qGooseLease, d.table(GooseLockTable), GooseLockID)).Scan(&by, &left)
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0, nil
	}
	if err == nil && by == "" {
		by = "?"
	}
	return by, left, err
}

// Unlock releases the lock; RELEASE_LOCK's 0 (held by another session) and
// NULL (held by none) are ErrNotLocked.
func (d Dialect) Unlock(ctx context.Context, conn *sql.Conn) error {
	var ok sql.NullInt64
	if err := conn.QueryRowContext(ctx, d.sql(qUnlock)).Scan(&ok); err != nil {
		return err
	}
	switch {
	case !ok.Valid:
		return fmt.Errorf("%w (RELEASE_LOCK: no such lock)", ErrNotLocked)
	case ok.Int64 != 1:
		return fmt.Errorf("%w (RELEASE_LOCK: held by another session)", ErrNotLocked)
	}
	return nil
}

// LockHolder names the connection holding the lock (IS_USED_LOCK) as the
// processlist shows it: id, user, client host, command, seconds in that
// state and state. A role without the PROCESS privilege sees only its own
// connections: the id alone then. A goose table-locker lease is named by
// its locked_by.
func (d Dialect) LockHolder(ctx context.Context, conn *sql.Conn) (string, error) {
	var (
		id, secs               sql.NullInt64
		user, host, cmd, state sql.NullString
		leaseTable             bool
	)
	if err := conn.QueryRowContext(ctx, d.sql(qLockHolder)).Scan(&id, &user, &host, &cmd, &secs, &state, &leaseTable); err != nil {
		return "", err
	}
	switch {
	case id.Valid && !user.Valid:
		return fmt.Sprintf("connection %d (not in the processlist this user may see)", id.Int64), nil
	case id.Valid:
		s := fmt.Sprintf("connection %d (user %s, client %s, %s for %ds", id.Int64, user.String, host.String, cmd.String, secs.Int64)
		if state.String != "" {
			s += ", state " + state.String
		}
		return s + ")", nil
	case !leaseTable:
		return "", nil
	}
	by, left, err := d.gooseLease(ctx, conn)
	if err != nil || by == "" {
		return "", err
	}
	return fmt.Sprintf("goose table locker %s (lease in %s, %ds left)", by, d.table(GooseLockTable), left), nil
}
