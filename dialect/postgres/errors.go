package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shiplock/shiplock/dialect"
)

// Classify sorts PostgreSQL and network errors by SQLSTATE and errno.
// Losing the server is Retryable wherever it happens, in a migration's
// statement too: shut down, restarted or crashed (57P01, 57P02, 57P03), a
// connection exception (class 08), a session the server closed
// (57P05 idle_session_timeout, 25P03 idle_in_transaction_session_timeout),
// a reset or closed connection. A statement canceled by statement_timeout
// (57014) is Permanent: it would time out again.
func (Dialect) Classify(err error) dialect.ErrorClass {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if strings.HasPrefix(pgErr.Code, "08") { // connection_exception
			return dialect.Retryable
		}
		switch pgErr.Code {
		case "28P01", "28000": // invalid_password, invalid_authorization_specification
			return dialect.Auth
		case "3D000": // invalid_catalog_name
			return dialect.MissingDatabase
		case "55P03", "40P01": // lock_not_available, deadlock_detected
			return dialect.LockConflict
		case "57P03", // cannot_connect_now: starting up, shutting down, recovering
			"53300", // too_many_connections
			"53400", // configuration_limit_exceeded
			"57P01", // admin_shutdown: fast shutdown, pg_terminate_backend
			"57P02", // crash_shutdown: another backend crashed, or immediate shutdown
			"57P05", // idle_session_timeout
			"25P03": // idle_in_transaction_session_timeout
			return dialect.Retryable
		}
		return dialect.Permanent
	}
	var dnsErr *net.DNSError
	switch {
	case dialect.IsTLSFailure(err):
		return dialect.Permanent
	case errors.Is(err, pgconn.ErrConnClosed), errors.Is(err, sql.ErrConnDone), errors.Is(err, driver.ErrBadConn):
		// The connection died under an earlier statement.
		return dialect.Retryable
	case errors.As(err, &dnsErr):
		// A name that does not resolve yet (a Service being created) heals.
		return dialect.Retryable
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EPIPE),
		errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return dialect.Retryable
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return dialect.Retryable
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return dialect.Retryable
	}
	return dialect.Permanent
}
