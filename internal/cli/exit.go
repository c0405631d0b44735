package cli

import (
	"context"
	"errors"
	"strings"

	"github.com/shiplock/shiplock/dbwait"
	"github.com/shiplock/shiplock/dialect"
	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/exitcode"
	"github.com/shiplock/shiplock/migrate"
	"github.com/shiplock/shiplock/migrate/sqlfile"
)

// usageError is bad input from the user: a flag, an argument, a missing
// setting.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(msg string) error { return &usageError{msg: msg} }

// errorText is err's message with what the server said besides it:
// PostgreSQL's DETAIL and HINT, on lines of their own as psql shows them.
func errorText(err error) string {
	msg := err.Error()
	if d := postgres.Detail(err); d != "" && !strings.Contains(msg, d) {
		msg += "\n" + d
	}
	return msg
}

// exitError carries an exit code, and a message when msg is set (else the
// command printed what it had to say).
type exitError struct {
	code exitcode.Code
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// exitCode is the exit code of a command that returned err.
func (g *globals) exitCode(err error) exitcode.Code {
	code := classify(err, g.classifier, g.stopped())
	if code == exitcode.Failed && g.timedOut() {
		// The statement the deadline cancelled fails with whatever the
		// driver says (57014 query_canceled): the cause is the deadline.
		code = exitcode.Unavailable
	}
	return code
}

// stopped reports whether shiplock was told to stop: SIGTERM or Ctrl-C
// closed Streams.Stop, or canceled Main's context.
func (g *globals) stopped() bool {
	select {
	case <-g.streams.Stop: // a nil channel never is
		return true
	default:
	}
	return g.ctx != nil && errors.Is(g.ctx.Err(), context.Canceled)
}

// classify maps an error to shiplock's exit code; it is the only place that
// does. c classifies the driver errors of the database the command opened
// (nil when it opened none). stopped says that the command was told to stop
// (SIGTERM or Ctrl-C).
//
// The order matters: what the command itself decided (usage, files,
// integrity) first; then being told to stop, whatever error the stop
// caused on its way out (a canceled query can come back as the server's
// 57014 query_canceled); then what the database's driver error means.
func classify(err error, c dialect.Classifier, stopped bool) exitcode.Code {
	var (
		usage     *usageError
		exit      *exitError
		parse     *sqlfile.ParseError
		file      *migrate.FileError
		unreg     *migrate.UnregisteredError
		implicit  *migrate.ImplicitCommitError
		other     *migrate.OtherVersionTableError
		integrity *migrate.IntegrityError
		waitErr   *dbwait.Error
	)
	switch {
	case err == nil:
		return exitcode.OK
	case errors.As(err, &exit):
		return exit.code
	case errors.As(err, &usage), errors.As(err, &other):
		return exitcode.Usage
	case errors.As(err, &parse), errors.As(err, &file), errors.As(err, &unreg), errors.As(err, &implicit):
		return exitcode.BadFile
	case errors.As(err, &integrity):
		return exitcode.Integrity
	case errors.Is(err, migrate.ErrLockTimeout):
		return exitcode.Locked
	case stopped, errors.Is(err, migrate.ErrStopped), errors.Is(err, context.Canceled):
		// Only a signal cancels a command's context: the run stopped
		// between (or during) statements, and a rerun continues.
		return exitcode.Stopped
	case errors.Is(err, dbwait.ErrTimeout):
		return exitcode.Unavailable
	}

	// A driver error, classified once by the database's own classifier
	// (SQLSTATE, errno, the driver's sentinels); the wait classified its
	// last error already.
	class := dialect.Permanent
	switch {
	case errors.As(err, &waitErr):
		class = waitErr.Class
	case c != nil:
		class = c.Classify(err)
	}
	switch class {
	case dialect.Auth, dialect.MissingDatabase:
		return exitcode.Auth
	case dialect.LockConflict:
		// The migration engine retries these (--ddl-retries) before
		// giving up: the conflicting transaction outlived the retries,
		// and may well be gone on the next run.
		return exitcode.Locked
	case dialect.Retryable:
		// The server went away or could not be reached: shut down,
		// restarted, crashed, a reset or closed connection, a timeout.
		return exitcode.Unavailable
	}
	if errors.Is(err, context.DeadlineExceeded) {
		// --timeout of await and check, or a deadline of the command.
		return exitcode.Unavailable
	}
	// Everything else is permanent, deliberately: a migration's own SQL
	// error (a syntax error, a constraint) repeats on every rerun, and so
	// does any error we cannot name (a Go migration's, a bug). Calling it
	// retryable would run a failing migration backoffLimit more times,
	// statements outside a transaction included, and hide the failure
	// behind the retries; every way we know of losing the server or being
	// stopped is named above, and an error missing there is a bug to fix
	// in its classifier.
	return exitcode.Failed
}
