package postgres

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shiplock/shiplock/dialect"
)

// Classify sorts PostgreSQL and network errors by SQLSTATE and errno.
func (Dialect) Classify(err error) dialect.ErrorClass {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
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
			"57P01", // admin_shutdown
			"57P02", // crash_shutdown
			"08000", "08003", "08006", "08001", "08004":
			return dialect.Retryable
		}
		return dialect.Permanent
	}
	var (
		certErr    *tls.CertificateVerificationError
		unknownCA  x509.UnknownAuthorityError
		hostErr    x509.HostnameError
		invalidErr x509.CertificateInvalidError
		recordErr  tls.RecordHeaderError
		dnsErr     *net.DNSError
	)
	switch {
	case errors.As(err, &certErr), errors.As(err, &unknownCA), errors.As(err, &hostErr),
		errors.As(err, &invalidErr), errors.As(err, &recordErr):
		return dialect.Permanent
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

func (Dialect) TimeoutStatements(lock, statement time.Duration, local bool) []string {
	set := "SET "
	if local {
		set = "SET LOCAL "
	}
	var out []string
	if lock > 0 {
		out = append(out, fmt.Sprintf("%slock_timeout = '%dms'", set, lock.Milliseconds()))
	}
	if statement > 0 {
		out = append(out, fmt.Sprintf("%sstatement_timeout = '%dms'", set, statement.Milliseconds()))
	}
	return out
}

func (Dialect) SessionTimeouts(ctx context.Context, q dialect.Querier) ([]string, error) {
	var lock, statement string
	if err := q.QueryRowContext(ctx, `SELECT current_setting('lock_timeout'), current_setting('statement_timeout')`).Scan(&lock, &statement); err != nil {
		return nil, err
	}
	return []string{
		fmt.Sprintf("SET lock_timeout = '%s'", lock),
		fmt.Sprintf("SET statement_timeout = '%s'", statement),
	}, nil
}
