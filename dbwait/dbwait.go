// Package dbwait waits until a database really accepts work: connect,
// authenticate, SELECT 1. It retries only what can heal (refused
// connections, names that do not resolve yet, timeouts, a server starting
// up or out of connections) and fails at once on what cannot (a wrong
// password, TLS misconfiguration), unlike a TCP port check that succeeds
// through a mesh proxy and loops forever on a wrong password.
package dbwait

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"regexp"
	"syscall"
	"time"

	"github.com/shiplock/shiplock/dialect"
)

// ErrTimeout is wrapped by the *Error returned when the database was not
// ready within Options.Timeout.
var ErrTimeout = errors.New("dbwait: database not ready in time")

// Options configure Wait. The zero value waits up to one minute with
// 5-second attempts, backing off from 25 ms to 100 ms: a refused
// connection costs the server nothing, and a short cap is what makes the
// migration start within tens of milliseconds of the server being ready.
type Options struct {
	// Timeout bounds the whole wait; 0 means one minute, negative means a
	// single attempt.
	Timeout time.Duration
	// AttemptTimeout bounds one connect + SELECT 1, so a peer that accepts
	// TCP and never answers is abandoned; 0 means 5 s.
	AttemptTimeout time.Duration
	// InitialBackoff and MaxBackoff shape the jittered exponential delay
	// between attempts; 0 means 25 ms and 100 ms.
	InitialBackoff, MaxBackoff time.Duration
	// RetryMissingDatabase keeps waiting while the server reports that the
	// database does not exist (it may be created by another Job).
	RetryMissingDatabase bool
	// Logger receives one line per distinct outcome, not one per attempt,
	// and one every ProgressInterval while the wait goes on; nil discards.
	Logger *slog.Logger
	// ProgressInterval is how often a wait that goes on says so ("still
	// waiting for the database"); 0 means 5 s, negative never.
	ProgressInterval time.Duration
}

// Result describes a wait.
type Result struct {
	Attempts int
	Waited   time.Duration
}

// Error is a wait that failed: at once on a permanent error, or when the
// time ran out (then it wraps ErrTimeout too). Err is the last attempt's
// error and Class its classification.
type Error struct {
	Class    dialect.ErrorClass
	Err      error
	Attempts int
	Waited   time.Duration
	timedOut bool
}

func (e *Error) Error() string {
	if e.timedOut {
		return fmt.Sprintf("database not ready after %s (%d attempts): %v", e.Waited.Round(time.Millisecond), e.Attempts, e.Err)
	}
	return fmt.Sprintf("database not usable (%s): %v", e.Class, e.Err)
}

func (e *Error) Unwrap() []error {
	if e.timedOut {
		return []error{ErrTimeout, e.Err}
	}
	return []error{e.Err}
}

// Wait pings db with "SELECT 1" until it answers, an error that cannot heal
// comes back, or the time runs out. The connection that answered stays in
// db's pool for the caller.
func Wait(ctx context.Context, db *sql.DB, c dialect.Classifier, o Options) (Result, error) {
	o = o.withDefaults()
	start := time.Now()
	var deadline time.Time
	if o.Timeout > 0 {
		deadline = start.Add(o.Timeout)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	delay := o.InitialBackoff
	var (
		seen       = map[string]bool{}
		res        Result
		lastReport = start
	)
	for {
		res.Attempts++
		err := ping(ctx, db, o.AttemptTimeout, deadline)
		res.Waited = time.Since(start)
		if err == nil {
			if res.Attempts > 1 {
				log.Info("database ready", "attempts", res.Attempts, "waited", res.Waited.Round(time.Millisecond))
			}
			return res, nil
		}
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		class := c.Classify(err)
		retry := class == dialect.Retryable || (class == dialect.MissingDatabase && o.RetryMissingDatabase)
		if !retry {
			return res, &Error{Class: class, Err: err, Attempts: res.Attempts, Waited: res.Waited}
		}
		if oc := outcome(err, class); !seen[oc] {
			// Once per distinct outcome, not per attempt: a reset loop
			// retries every 100 ms.
			seen[oc] = true
			log.Info("waiting for the database", "reason", err.Error(), "class", class.String())
			lastReport = time.Now()
		} else if o.ProgressInterval > 0 && time.Since(lastReport) >= o.ProgressInterval {
			log.Info("still waiting for the database", "reason", err.Error(), "attempts", res.Attempts, "waited", res.Waited.Round(time.Millisecond))
			lastReport = time.Now()
		}
		sleep := delay/2 + rand.N(delay/2+1)
		if o.Timeout < 0 || (!deadline.IsZero() && time.Now().Add(sleep).After(deadline)) {
			return res, &Error{Class: class, Err: err, Attempts: res.Attempts, Waited: res.Waited, timedOut: true}
		}
		t := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			t.Stop()
			return res, ctx.Err()
		case <-t.C:
		}
		delay = min(delay*2, o.MaxBackoff)
	}
}

func ping(ctx context.Context, db *sql.DB, attempt time.Duration, deadline time.Time) error {
	actx, cancel := context.WithTimeout(ctx, attempt)
	defer cancel()
	if !deadline.IsZero() {
		var cancel2 context.CancelFunc
		actx, cancel2 = context.WithDeadline(actx, deadline)
		defer cancel2()
	}
	var one int
	return db.QueryRowContext(actx, "SELECT 1").Scan(&one)
}

func (o Options) withDefaults() Options {
	if o.Timeout == 0 {
		o.Timeout = time.Minute
	}
	if o.AttemptTimeout <= 0 {
		o.AttemptTimeout = 5 * time.Second
	}
	if o.InitialBackoff <= 0 {
		o.InitialBackoff = 25 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 100 * time.Millisecond
	}
	if o.ProgressInterval == 0 {
		o.ProgressInterval = 5 * time.Second
	}
	return o
}

// digits are the parts of an error message that change from one attempt to
// the next without changing what happened: ephemeral ports, pids, counts.
var digits = regexp.MustCompile(`[0-9]+`)

// outcome names what an attempt ran into, so that Wait logs each distinct
// outcome once. It is the error's class and what the error is (SQLSTATE,
// errno, end of stream, DNS failure, timeout), never the text that differs
// between attempts, such as the local port of
// "read tcp 127.0.0.1:54012->127.0.0.1:5432: connection reset by peer".
func outcome(err error, class dialect.ErrorClass) string {
	var (
		sqlState interface{ SQLState() string }
		errno    syscall.Errno
		dnsErr   *net.DNSError
		netErr   net.Error
	)
	what := ""
	switch {
	case errors.As(err, &sqlState):
		what = "sqlstate " + sqlState.SQLState()
	case errors.As(err, &errno):
		what = "errno " + errno.Error()
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		what = "eof"
	case errors.As(err, &dnsErr):
		what = "dns " + dnsErr.Name
	case errors.As(err, &netErr) && netErr.Timeout():
		what = "timeout"
	default:
		what = digits.ReplaceAllString(err.Error(), "#")
	}
	return class.String() + ": " + what
}
