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
	// Logger receives one line per distinct outcome, not one per attempt;
	// nil discards.
	Logger *slog.Logger
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
		lastMsg string
		res     Result
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
		if msg := err.Error(); msg != lastMsg {
			log.Info("waiting for the database", "reason", msg, "class", class.String())
			lastMsg = msg
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
	return o
}
