package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/shiplock/shiplock/dialect"
)

// LeaseTable is goose's table locker's table (goose v3.26+, lock.NewPostgresTableLocker
// with its defaults): shiplock's lease is goose's row, lock_id LockID, in the
// same layout and meaning (locked, locked_by, lease_expires_at on the server's
// clock), so that goose runners using the table locker and shiplock runners
// using the lease exclude each other.
const LeaseTable = "goose_lock"

// leaseLostCode is the SQLSTATE the fence raises: no server error has it.
const leaseLostCode = "SL001"

const (
	// The lock table lives beside goose_db_version, or, before that
	// exists, where goose's table locker creates it: the current schema.
	leaseSchema = `coalesce((SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid = to_regclass('goose_db_version')), current_schema())`
	qLeaseSchema = `SELECT ` + leaseSchema
	qRegclass    = `SELECT to_regclass($1) IS NOT NULL`
	// goose's layout, column for column.
	qCreateLeaseTable = `CREATE TABLE IF NOT EXISTS %s (
		lock_id bigint NOT NULL PRIMARY KEY,
		locked boolean NOT NULL DEFAULT false,
		locked_at timestamptz NULL,
		locked_by text NULL,
		lease_expires_at timestamptz NULL,
		updated_at timestamptz NULL
	)`
	// Taken when free or expired, and only while no session holds the
	// session lock: the transaction-level advisory lock excludes a
	// session runner until this commits, after which it sees the lease.
	qTakeLease = `WITH free AS (SELECT pg_try_advisory_xact_lock($1) AS ok)
		INSERT INTO %[1]s AS l (lock_id, locked, locked_at, locked_by, lease_expires_at, updated_at)
		SELECT $1, true, now(), $2, clock_timestamp() + $3::bigint * interval '1 millisecond', now() FROM free WHERE free.ok
		ON CONFLICT (lock_id) DO UPDATE SET locked = true, locked_at = now(), locked_by = EXCLUDED.locked_by,
			lease_expires_at = EXCLUDED.lease_expires_at, updated_at = now()
		WHERE NOT l.locked OR l.lease_expires_at IS NULL OR l.lease_expires_at < clock_timestamp()
		RETURNING true`
	qLeaseHolder = `SELECT coalesce(locked_by, ''), greatest(lease_expires_at - clock_timestamp(), interval '0')::text
		FROM %s WHERE lock_id = $1 AND locked AND lease_expires_at > clock_timestamp()`
	// Renewal needs the lease unexpired, not only ours: a holder that was
	// paused past its lease has lost it even when nobody took it yet.
	qRenewLease = `UPDATE %s SET lease_expires_at = clock_timestamp() + $3::bigint * interval '1 millisecond', updated_at = now()
		WHERE lock_id = $1 AND locked AND locked_by = $2 AND lease_expires_at > clock_timestamp() RETURNING true`
	qReleaseLease = `UPDATE %s SET locked = false, locked_by = NULL, lease_expires_at = NULL, updated_at = now()
		WHERE lock_id = $1 AND locked_by = $2`
	// The fence row-locks the lease until the transaction ends; a runner
	// paused inside it loses its session after the lease's length, so a
	// taker never waits on it for longer.
	qFence = `SET LOCAL idle_in_transaction_session_timeout = %[4]d; DO $shiplock_fence$BEGIN
UPDATE %[1]s SET updated_at = now() WHERE lock_id = %[2]d AND locked AND locked_by = %[3]s AND lease_expires_at > clock_timestamp();
IF NOT FOUND THEN RAISE EXCEPTION 'shiplock: the migration lease was lost (expired, or taken by another runner); nothing of this transaction is recorded' USING ERRCODE = '` + leaseLostCode + `'; END IF;
END$shiplock_fence$`
	qCheck = `DO $shiplock_check$BEGIN
PERFORM FROM %[1]s WHERE lock_id = %[2]d AND locked AND locked_by = %[3]s AND lease_expires_at > clock_timestamp();
IF NOT FOUND THEN RAISE EXCEPTION 'shiplock: the migration lease was lost (expired, or taken by another runner)' USING ERRCODE = '` + leaseLostCode + `'; END IF;
END$shiplock_check$`
	// Where Lease creates it: also before goose_db_version exists.
	qLeaseTableOf = `SELECT to_regclass(quote_ident(` + leaseSchema + `) || '.` + LeaseTable + `')::text`
	qLeaseHeld    = `SELECT EXISTS (SELECT 1 FROM %s WHERE lock_id = $1 AND locked AND lease_expires_at > clock_timestamp())`
	qRoleTimeouts = `SELECT coalesce(bool_or(c LIKE 'lock_timeout=%' AND c NOT IN ('lock_timeout=0')), false), coalesce(bool_or(c LIKE 'statement_timeout=%' AND c NOT IN ('statement_timeout=0')), false)
		FROM pg_db_role_setting s CROSS JOIN LATERAL unnest(s.setconfig) AS c
		WHERE s.setrole IN (0, (SELECT oid FROM pg_roles WHERE rolname = current_user))
		  AND s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))`
	qClientEnd = `SELECT host(inet_client_addr()), coalesce(inet_client_port(), 0), pg_backend_pid()`
)

var _ dialect.Leaser = Dialect{}

// Direct proves a connection direct by two facts: the backend process the
// server says runs the session is the one the server named to the client at
// connection start (BackendKeyData; a pooler names its own, made up, since
// the client's queries go to several backends), and the client address and
// port the server sees are this socket's local end (a pooler's connection
// comes from the pooler's socket). On a Unix socket the server sees no
// address; the first fact decides.
func (Dialect) Direct(ctx context.Context, conn *sql.Conn) (bool, string, error) {
	var (
		startPID  uint32
		local     net.Addr
		addr      sql.NullString
		port, pid int64
	)
	if err := conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("postgres: unexpected driver connection %T", dc)
		}
		startPID = c.Conn().PgConn().PID()
		local = c.Conn().PgConn().Conn().LocalAddr()
		return nil
	}); err != nil {
		return false, "", err
	}
	if err := conn.QueryRowContext(ctx, qClientEnd).Scan(&addr, &port, &pid); err != nil {
		return false, "", err
	}
	if int64(startPID) != pid {
		return false, fmt.Sprintf("the session runs in backend %d, but the server at connection start named %d: a pooler stands between", pid, startPID), nil
	}
	tcp, isTCP := local.(*net.TCPAddr)
	switch {
	case !isTCP && !addr.Valid:
		return true, "Unix socket, the backend the server named at connection start", nil
	case isTCP && addr.Valid && int64(tcp.Port) == port && tcp.IP.Equal(net.ParseIP(addr.String)):
		return true, fmt.Sprintf("the server sees this socket's end %s", tcp), nil
	case !addr.Valid:
		return false, fmt.Sprintf("the server sees a Unix-socket client, this socket is %s: a proxy stands between", local), nil
	}
	return false, fmt.Sprintf("the server sees the client %s, this socket is %s: a proxy or pooler stands between", net.JoinHostPort(addr.String, fmt.Sprint(port)), local), nil
}

func (Dialect) RoleTimeouts(ctx context.Context, q dialect.Querier) (lock, statement bool, err error) {
	err = q.QueryRowContext(ctx, qRoleTimeouts).Scan(&lock, &statement)
	return lock, statement, err
}

// lease is one owner's lease on goose's lock row.
type lease struct {
	table, owner string
	length       time.Duration
}

// Lease creates the lock table when missing (as goose does: checked
// first, so that a role without CREATE on the schema can use an existing
// table).
func (d Dialect) Lease(ctx context.Context, q dialect.Querier, owner string, length time.Duration) (dialect.Lease, error) {
	if length < time.Second {
		return nil, fmt.Errorf("lease length %s is below one second", length)
	}
	var schema sql.NullString
	if err := q.QueryRowContext(ctx, d.sql(qLeaseSchema)).Scan(&schema); err != nil {
		return nil, err
	}
	if !schema.Valid {
		return nil, errors.New("no schema to create the lock table in: search_path names none that exists")
	}
	l := &lease{table: pgx.Identifier{schema.String, LeaseTable}.Sanitize(), owner: owner, length: length}
	exists := false
	if err := q.QueryRowContext(ctx, qRegclass, l.table).Scan(&exists); err != nil || exists {
		return l, err
	}
	if _, err := q.ExecContext(ctx, fmt.Sprintf(qCreateLeaseTable, l.table)); err != nil {
		// Another runner may have created it at the same moment (23505
		// on pg_type): a table that exists now is the one we wanted.
		if q.QueryRowContext(ctx, qRegclass, l.table).Scan(&exists) != nil || !exists {
			return nil, fmt.Errorf("create lock table %s: %w", l.table, err)
		}
	}
	return l, nil
}

func (l *lease) Table() string { return l.table }

func (l *lease) Take(ctx context.Context, q dialect.Querier) (bool, string, error) {
	tx, ok := q.(*sql.Tx)
	if !ok {
		var err error
		var took bool
		var holder string
		err = inTx(ctx, q, func(tx *sql.Tx) error {
			took, holder, err = l.Take(ctx, tx)
			return err
		})
		return took, holder, err
	}
	// A fence holds the row for milliseconds; a taker does not queue
	// behind it for long.
	if _, err := tx.ExecContext(ctx, "SET LOCAL lock_timeout = 200"); err != nil {
		return false, "", err
	}
	var took bool
	err := tx.QueryRowContext(ctx, fmt.Sprintf(qTakeLease, l.table), LockID, l.owner, l.length.Milliseconds()).Scan(&took)
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return true, "", nil
	case errors.As(err, &pgErr) && pgErr.Code == "55P03":
		return false, "a runner recording its progress", nil
	case err != sql.ErrNoRows:
		return false, "", err
	}
	var by, left string
	switch err := tx.QueryRowContext(ctx, fmt.Sprintf(qLeaseHolder, l.table), LockID).Scan(&by, &left); {
	case err == nil:
		return false, fmt.Sprintf("%s (lease %s, %s left)", by, l.table, left), nil
	case err != sql.ErrNoRows:
		return false, "", err
	}
	return false, "a session holding the session lock (advisory lock " + fmt.Sprint(LockID) + ")", nil
}

// inTx runs fn in a transaction on q, which must be a *sql.Conn or *sql.DB.
func inTx(ctx context.Context, q dialect.Querier, fn func(*sql.Tx) error) error {
	var (
		tx  *sql.Tx
		err error
	)
	switch b := q.(type) {
	case *sql.Conn:
		tx, err = b.BeginTx(ctx, nil)
	case *sql.DB:
		tx, err = b.BeginTx(ctx, nil)
	default:
		return fmt.Errorf("postgres: cannot begin a transaction on %T", q)
	}
	if err != nil {
		return err
	}
	return dialect.CommitOrRollback(tx, fn)
}

func (l *lease) Renew(ctx context.Context, q dialect.Querier) error {
	var ok bool
	err := q.QueryRowContext(ctx, fmt.Sprintf(qRenewLease, l.table), LockID, l.owner, l.length.Milliseconds()).Scan(&ok)
	if err == sql.ErrNoRows {
		return dialect.ErrLeaseLost
	}
	return err
}

func (l *lease) Release(ctx context.Context, q dialect.Querier) error {
	_, err := q.ExecContext(ctx, fmt.Sprintf(qReleaseLease, l.table), LockID, l.owner)
	return err
}

func (l *lease) Fence() string {
	return fmt.Sprintf(qFence, l.table, LockID, quote(l.owner), l.length.Milliseconds())
}

func (l *lease) Check() string {
	return fmt.Sprintf(qCheck, l.table, LockID, quote(l.owner))
}

// IsLeaseLost reports whether err is the fence's failure or a lost
// renewal.
func (Dialect) IsLeaseLost(err error) bool {
	var pgErr *pgconn.PgError
	return errors.Is(err, dialect.ErrLeaseLost) || (errors.As(err, &pgErr) && pgErr.Code == leaseLostCode)
}

// leaseHeld reports whether somebody holds an unexpired lease in the lock
// table beside goose_db_version (false when there is none).
func (d Dialect) leaseHeld(ctx context.Context, q dialect.Querier) (bool, error) {
	var table sql.NullString
	if err := q.QueryRowContext(ctx, d.sql(qLeaseTableOf)).Scan(&table); err != nil {
		return false, err
	}
	if !table.Valid {
		return false, nil
	}
	var held bool
	err := q.QueryRowContext(ctx, fmt.Sprintf(qLeaseHeld, table.String), LockID).Scan(&held)
	return held, err
}

// leaseAlive marks the markers of rs alive while a lease is held: under
// the lease a marker's runner is in progress while its lease is unexpired
// (its backend pid, which a pooler changes, says nothing).
func (d Dialect) leaseAlive(ctx context.Context, q dialect.Querier, rs []dialect.Record) error {
	var markers []int
	for i, r := range rs {
		if r.State != dialect.StateApplied && !r.Alive {
			markers = append(markers, i)
		}
	}
	if len(markers) == 0 {
		return nil
	}
	held, err := d.leaseHeld(ctx, q)
	if err != nil || !held {
		return err
	}
	for _, i := range markers {
		rs[i].Alive = true
	}
	return nil
}
