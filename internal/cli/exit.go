package cli

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shiplock/shiplock/dbwait"
	"github.com/shiplock/shiplock/dialect"
	"github.com/shiplock/shiplock/migrate"
	"github.com/shiplock/shiplock/migrate/sqlfile"
)

// Exit codes are part of shiplock's interface (the README lists them). 1–5
// are permanent: retrying the same command cannot help. 6 and 7 are
// retryable. A Job's podFailurePolicy fails the Job at once on 1–5.
const (
	ExitOK        = 0
	ExitFailed    = 1 // a migration's SQL failed, or another error
	ExitUsage     = 2 // bad flags, arguments or configuration
	ExitBadFile   = 3 // a migration file is malformed, misnamed or duplicated
	ExitIntegrity = 4 // an applied file was edited, or files are out of order
	ExitAuth      = 5 // bad credentials, or the database does not exist
	ExitNotReady  = 6 // the database did not become ready in time (retryable)
	ExitLocked    = 7 // the migration lock was not acquired in time (retryable)
	ExitPending   = 8 // status --exit-code: migrations are pending
)

// usageError is bad input from the user: a flag, an argument, a missing
// setting.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(msg string) error { return &usageError{msg: msg} }

// exitError carries an exit code, and a message when msg is set (else the
// command printed what it had to say).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// exitCode maps an error to shiplock's exit code. It is the only place
// that does.
func exitCode(err error) int {
	var (
		usage     *usageError
		exit      *exitError
		parse     *sqlfile.ParseError
		file      *migrate.FileError
		unreg     *migrate.UnregisteredError
		integrity *migrate.IntegrityError
		pgErr     *pgconn.PgError
		waitErr   *dbwait.Error
	)
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &exit):
		return exit.code
	case errors.As(err, &usage):
		return ExitUsage
	case errors.As(err, &parse), errors.As(err, &file), errors.As(err, &unreg):
		return ExitBadFile
	case errors.Is(err, migrate.ErrStopped):
		return ExitNotReady // told to stop (SIGTERM): retryable; what completed is recorded
	case errors.As(err, &integrity):
		return ExitIntegrity
	case errors.Is(err, migrate.ErrLockTimeout):
		return ExitLocked
	case errors.Is(err, dbwait.ErrTimeout):
		return ExitNotReady
	case errors.As(err, &waitErr) && (waitErr.Class == dialect.Auth || waitErr.Class == dialect.MissingDatabase):
		return ExitAuth
	case errors.As(err, &pgErr) && isAuthCode(pgErr.Code):
		return ExitAuth
	case errors.Is(err, context.DeadlineExceeded):
		return ExitNotReady
	}
	return ExitFailed
}

func isAuthCode(code string) bool {
	switch code {
	case "28000", "28P01", "3D000":
		return true
	}
	return false
}
