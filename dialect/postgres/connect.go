package postgres

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// connector reports a failed connection by the attempt that matters.
type connector struct{ driver.Connector }

func (c connector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	return conn, oneReason(err)
}

// oneReason keeps, of a failed connection's attempts, those the server
// answered with an error of its own, when there are some. Under libpq's
// default sslmode (prefer) pgx tries TLS first, then plaintext, and
// reports both: a wrong password read after "tls error: server refused
// TLS connection", which looks like the cause and is not.
func oneReason(err error) error {
	var ce *pgconn.ConnectError
	if !errors.As(err, &ce) {
		return err
	}
	joined, ok := ce.Unwrap().(interface{ Unwrap() []error })
	if !ok {
		return err
	}
	all := joined.Unwrap()
	var answered []error
	for _, e := range all {
		var pe *pgconn.PgError
		if errors.As(e, &pe) {
			answered = append(answered, e)
		}
	}
	if len(answered) == 0 || len(answered) == len(all) {
		return err
	}
	return &connectError{ConnectError: ce, shown: answered}
}

// connectError is a ConnectError that shows only some of its attempts;
// it unwraps to the whole, so that classifying it sees everything.
type connectError struct {
	*pgconn.ConnectError
	shown []error
}

func (e *connectError) Error() string {
	// pgconn.ConnectError's own layout, with the attempts kept.
	prefix := fmt.Sprintf("failed to connect to `user=%s database=%s`:", e.Config.User, e.Config.Database)
	details := errors.Join(e.shown...).Error()
	if strings.Contains(details, "\n") {
		return prefix + "\n\t" + strings.ReplaceAll(details, "\n", "\n\t")
	}
	return prefix + " " + details
}

func (e *connectError) Unwrap() error { return e.ConnectError }

// Detail returns the DETAIL and HINT lines PostgreSQL sent with the error
// err wraps ("DETAIL: Key (id)=(1) already exists."), or "".
func Detail(err error) string {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return ""
	}
	var lines []string
	if pe.Detail != "" {
		lines = append(lines, "DETAIL: "+pe.Detail)
	}
	if pe.Hint != "" {
		lines = append(lines, "HINT: "+pe.Hint)
	}
	return strings.Join(lines, "\n")
}
