package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/shiplock/shiplock/dialect"
)

var (
	_ dialect.Canceller = Dialect{}
	_ dialect.Observer  = Dialect{}
)

// BackendPID returns conn's connection id (CONNECTION_ID(), the id KILL
// and the processlist use).
func (Dialect) BackendPID(ctx context.Context, conn *sql.Conn) (int64, error) {
	var id int64
	err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id)
	return id, err
}

// erNoSuchThread: KILL of a connection id that does not exist (any more).
const erNoSuchThread = 1094

// CancelBackend stops the statement connection pid runs (KILL QUERY): it
// fails with 1317 and the connection stays. A connection that has ended
// is no error. Killing another user's statement needs the CONNECTION
// ADMIN (MySQL) or SUPER privilege; a runner's own user may always.
func (Dialect) CancelBackend(ctx context.Context, q dialect.Querier, pid int64) error {
	_, err := q.ExecContext(ctx, fmt.Sprintf("KILL QUERY %d", pid))
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == erNoSuchThread {
		return nil
	}
	return err
}

// qActivity, followed by an id, reads that connection from the processlist
// and, while it waits for a lock (a metadata lock, as an ALTER behind an
// open transaction does, or an InnoDB row lock), the other connections of
// the same current database with a transaction open since before its
// statement began: MySQL does not say which one holds a metadata lock
// without performance_schema, so these are the candidates, oldest first
// (a blocker working from another current database is missed; the
// server's other databases' transactions are left out). INNODB_TRX is a
// snapshot the server refreshes once nobody has read it for 100 ms.
const qActivity = `SELECT COALESCE(p.INFO, ''), p.COMMAND = 'Query', p.TIME,
	IF(p.STATE LIKE '%lock%' OR EXISTS (SELECT 1 FROM information_schema.INNODB_TRX w WHERE w.trx_mysql_thread_id = p.ID AND w.trx_state = 'LOCK WAIT'),
		COALESCE((SELECT GROUP_CONCAT(CONCAT('connection ', o.ID, ' (user ', o.USER,
				', transaction open for ', TIMESTAMPDIFF(SECOND, t.trx_started, NOW()), 's',
				IF(o.COMMAND = 'Sleep', ', idle', ''), ')') ORDER BY t.trx_started SEPARATOR ', ')
			FROM information_schema.INNODB_TRX t JOIN information_schema.PROCESSLIST o ON o.ID = t.trx_mysql_thread_id
			WHERE o.ID <> p.ID AND o.DB <=> p.DB AND t.trx_started <= NOW() - INTERVAL p.TIME SECOND), ''),
		'')
	FROM information_schema.PROCESSLIST p WHERE p.ID = `

// qActivityOwn is qActivity without the transactions, for a user without
// the PROCESS privilege (INNODB_TRX needs it; the processlist then shows
// the user's own connections, the runner's among them).
const qActivityOwn = `SELECT COALESCE(p.INFO, ''), p.COMMAND = 'Query', p.TIME, ''
	FROM information_schema.PROCESSLIST p WHERE p.ID = `

// erSpecificAccessDenied: a privilege such as PROCESS is missing.
const erSpecificAccessDenied = 1227

// Activity reads the processlist (statement and seconds running: MySQL
// counts whole seconds) and, while the statement waits for a lock, the
// connections with older open transactions (when the reading user has the
// PROCESS privilege).
func (Dialect) Activity(ctx context.Context, q dialect.Querier, pid int64) (dialect.Activity, error) {
	var (
		a       dialect.Activity
		running bool
		secs    int64
	)
	id := strconv.FormatInt(pid, 10)
	err := q.QueryRowContext(ctx, qActivity+id).Scan(&a.Query, &running, &secs, &a.BlockedBy)
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == erSpecificAccessDenied {
		err = q.QueryRowContext(ctx, qActivityOwn+id).Scan(&a.Query, &running, &secs, &a.BlockedBy)
	}
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !running) {
		return dialect.Activity{}, nil
	}
	if err != nil {
		return dialect.Activity{}, err
	}
	a.Running = time.Duration(secs) * time.Second
	return a, nil
}
