package gate

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

// Defaults of AwaitOptions.
const (
	DefaultInterval       = 25 * time.Millisecond
	DefaultMaxInterval    = time.Second
	DefaultAttemptTimeout = 5 * time.Second
)

// AwaitOptions tune Await. The zero value is a valid configuration.
type AwaitOptions struct {
	// Interval is the first pause between checks (default
	// DefaultInterval). Pauses double after each check that is not ready,
	// up to MaxInterval (default DefaultMaxInterval); each pause is
	// jittered down by up to half, so that many replicas starting together
	// spread their checks.
	Interval, MaxInterval time.Duration
	// AttemptTimeout bounds one check, connection included (default
	// DefaultAttemptTimeout), so that a peer that accepts and never
	// answers costs one attempt, not the whole wait.
	AttemptTimeout time.Duration
	// Retryable decides whether a failed check is tried again. nil asks
	// the dialect: errors it classifies as dialect.Retryable (refused
	// connections, names that do not resolve yet, timeouts, a server
	// starting up or out of connections) or dialect.LockConflict are
	// retried, since the database may not be up yet; anything else (bad
	// credentials, a missing database or table permission, TLS
	// misconfiguration) makes Await return that error at once.
	Retryable func(error) bool
	// Logger receives one record per distinct check error and per change
	// of the reason the schema is not ready, and one when it is ready. nil
	// discards them.
	Logger *slog.Logger
}

// NotReadyError is returned by Await when its context ends before the
// schema is ready. It wraps ErrNotReady and the context's error
// (context.DeadlineExceeded or context.Canceled).
type NotReadyError struct {
	// Status is the last successful check; the zero value when no check
	// succeeded.
	Status Status
	// Err is the error of the last check when it failed, else nil.
	Err error
	// Cause is the context's error.
	Cause error
}

func (e *NotReadyError) Error() string {
	switch {
	case e.Err != nil:
		return fmt.Sprintf("%v: last check failed: %v", ErrNotReady, e.Err)
	case e.Status.Reason != "":
		return fmt.Sprintf("%v: %s", ErrNotReady, e.Status.Reason)
	}
	return fmt.Sprintf("%v: no check completed", ErrNotReady)
}

func (e *NotReadyError) Unwrap() []error { return []error{ErrNotReady, e.Cause} }

// Await checks (see Check) until the schema is ready or ctx is done, with
// jittered exponential backoff between checks. The first check always gets
// its AttemptTimeout, even past ctx's deadline (cancellation still stops it
// at once), so that a short wait on a slow machine still says why the
// schema is not ready. Failed checks are retried as
// opts.Retryable says; each distinct error is logged once.
//
// It returns the ready Status and nil; or the last Status and a
// *NotReadyError when ctx ends first; or the last Status and the check's
// error, wrapped, when it cannot heal (see AwaitOptions.Retryable). Bound
// the wait with ctx; Await is safe for concurrent use.
func Await(ctx context.Context, db *sql.DB, d dialect.Dialect, need int64, opts AwaitOptions) (Status, error) {
	interval := opts.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	maxInterval := opts.MaxInterval
	if maxInterval <= 0 {
		maxInterval = DefaultMaxInterval
	}
	maxInterval = max(maxInterval, interval)
	attempt := opts.AttemptTimeout
	if attempt <= 0 {
		attempt = DefaultAttemptTimeout
	}
	retryable := opts.Retryable
	if retryable == nil {
		retryable = func(err error) bool {
			c := d.Classify(err)
			return c == dialect.Retryable || c == dialect.LockConflict
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}

	var (
		last       Status
		lastErr    error
		lastReason string
		seenErrs   = map[string]bool{}
		timer      *time.Timer
	)
	for first := true; ; first = false {
		st, err := check(ctx, db, d, need, attempt, first)
		switch {
		case err == nil:
			last, lastErr = st, nil
			if st.Ready {
				log.Info("schema ready", "reason", st.Reason, "current", st.Current, "need", need)
				return st, nil
			}
			if st.Reason != lastReason {
				lastReason = st.Reason
				log.Info("waiting for the schema", "reason", st.Reason, "current", st.Current, "need", need)
			}
		case ctx.Err() != nil:
			// The check was cut short because the wait is over. Its error
			// only says more than what came before when nothing did (a
			// peer that accepts and never answers).
			if last.Reason == "" && lastErr == nil {
				lastErr = err
			}
		default:
			if !retryable(err) {
				return last, fmt.Errorf("check schema: %w", err)
			}
			lastErr = err
			if msg := err.Error(); !seenErrs[msg] {
				seenErrs[msg] = true
				log.Warn("schema check failed, retrying", "err", msg)
			}
		}

		pause := interval/2 + rand.N(interval/2+1)
		if timer == nil {
			timer = time.NewTimer(pause)
			defer timer.Stop()
		} else {
			timer.Reset(pause)
		}
		select {
		case <-ctx.Done():
			return last, &NotReadyError{Status: last, Err: lastErr, Cause: ctx.Err()}
		case <-timer.C:
		}
		interval = min(interval*2, maxInterval)
	}
}

// check runs one Check bounded by attempt. The first one ignores ctx's
// deadline but not its cancellation.
func check(ctx context.Context, db *sql.DB, d dialect.Dialect, need int64, attempt time.Duration, first bool) (Status, error) {
	parent := ctx
	if first {
		parent = context.WithoutCancel(ctx)
	}
	actx, cancel := context.WithTimeout(parent, attempt)
	defer cancel()
	if first {
		stop := context.AfterFunc(ctx, func() {
			if !errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
				cancel()
			}
		})
		defer stop()
	}
	return Check(actx, db, d, need)
}
