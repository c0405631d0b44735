package mysql

import (
	"context"
	"crypto/tls"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"

	"github.com/go-sql-driver/mysql"

	"github.com/shiplock/shiplock/dialect"
)

// Server error numbers the classifier knows (MySQL's and MariaDB's share
// these).
const (
	erDBAccessDenied      = 1044 // access denied for user to database
	erAccessDenied        = 1045 // wrong user or password
	erBadDB               = 1049 // unknown database
	erConCount            = 1040 // too many connections
	erServerShutdown      = 1053 // server shutdown in progress
	erTooManyUserConns    = 1203 // max_user_connections reached
	erLockWaitTimeout     = 1205 // lock_wait_timeout / innodb_lock_wait_timeout
	erLockDeadlock        = 1213 // deadlock victim: the transaction was rolled back
	erAccessDeniedNoPass  = 1698 // MySQL: auth_socket and the like refused
	erConnectionKilled    = 1927 // MariaDB: KILL CONNECTION, shutdown
	erClientIdleTimeout   = 4031 // MySQL 8: disconnected after wait_timeout
	erLockAbortedByServer = 1689 // MySQL/MariaDB: a metadata lock wait aborted (ER_LOCK_ABORTED)
)

var _ dialect.Classifier = Dialect{}

// Classify sorts the driver's errors by MySQL error number and by Go error
// type, never by text. The Go driver reports a connection it could not
// open or lost as net errors, io.EOF, io.ErrUnexpectedEOF,
// driver.ErrBadConn or mysql.ErrInvalidConn (not as the C client's
// 2002/2003/2013): all Retryable, in a migration's statement too. TLS
// failures (certificates, a server that does not speak TLS) are
// Permanent. A statement stopped by max_statement_time (1969) or
// max_execution_time (3024), or by KILL QUERY (1317), is Permanent: it
// would stop again.
func (Dialect) Classify(err error) dialect.ErrorClass {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case erAccessDenied, erDBAccessDenied, erAccessDeniedNoPass:
			return dialect.Auth
		case erBadDB:
			return dialect.MissingDatabase
		case erLockWaitTimeout, erLockDeadlock, erLockAbortedByServer:
			return dialect.LockConflict
		case erConCount, erTooManyUserConns, erServerShutdown, erConnectionKilled, erClientIdleTimeout:
			return dialect.Retryable
		}
		return dialect.Permanent
	}
	var (
		netErr   net.Error
		alertErr tls.AlertError // the server refused our certificate
	)
	switch {
	case dialect.IsTLSFailure(err), errors.As(err, &alertErr), errors.Is(err, mysql.ErrNoTLS):
		return dialect.Permanent
	case errors.Is(err, mysql.ErrInvalidConn), errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &netErr): // *net.OpError (refused, reset, unreachable), *net.DNSError, timeouts
		return dialect.Retryable
	}
	return dialect.Permanent
}
