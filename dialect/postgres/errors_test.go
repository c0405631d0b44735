package postgres_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shiplock/shiplock/dialect"
	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/internal/testdb"
)

func TestClassifyTable(t *testing.T) {
	pg := func(code string) error { return fmt.Errorf("apply: %w", &pgconn.PgError{Code: code}) }
	tests := []struct {
		err  error
		want dialect.ErrorClass
	}{
		{pg("42601"), dialect.Permanent}, // syntax_error: the migration's own
		{pg("23505"), dialect.Permanent}, // unique_violation
		{pg("57014"), dialect.Permanent}, // query_canceled: statement_timeout
		{pg("57P04"), dialect.Permanent}, // database_dropped
		{pg("28P01"), dialect.Auth},
		{pg("3D000"), dialect.MissingDatabase},
		{pg("55P03"), dialect.LockConflict},
		{pg("40P01"), dialect.LockConflict},
		{pg("57P01"), dialect.Retryable}, // admin_shutdown
		{pg("57P02"), dialect.Retryable}, // crash_shutdown
		{pg("57P03"), dialect.Retryable}, // cannot_connect_now
		{pg("57P05"), dialect.Retryable}, // idle_session_timeout
		{pg("25P03"), dialect.Retryable}, // idle_in_transaction_session_timeout
		{pg("08006"), dialect.Retryable}, // connection_failure
		{pg("08007"), dialect.Retryable}, // transaction_resolution_unknown
		{pg("08P01"), dialect.Retryable}, // protocol_violation
		{fmt.Errorf("exec: %w", io.ErrUnexpectedEOF), dialect.Retryable},
		{fmt.Errorf("exec: %w", io.EOF), dialect.Retryable},
		{&net.OpError{Op: "read", Err: syscall.ECONNRESET}, dialect.Retryable},
		{fmt.Errorf("exec: %w", pgconn.ErrConnClosed), dialect.Retryable},
		{fmt.Errorf("exec: %w", sql.ErrConnDone), dialect.Retryable},
		{fmt.Errorf("exec: %w", driver.ErrBadConn), dialect.Retryable},
		{context.DeadlineExceeded, dialect.Retryable},
		{context.Canceled, dialect.Permanent}, // a stop, not a lost server: the caller decides
		{errors.New("something else"), dialect.Permanent},
	}
	for _, tt := range tests {
		if got := (postgres.Dialect{}).Classify(tt.err); got != tt.want {
			t.Errorf("Classify(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// TestClassifyTerminatedBackend: a statement whose backend is terminated
// (pg_terminate_backend, what a fast shutdown does to every backend) fails
// with an error Classify calls retryable, and so does the next statement on
// the dead connection.
func TestClassifyTerminatedBackend(t *testing.T) {
	url := testdb.Postgres(t)
	db, err := postgres.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var pid int
	if err := conn.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := conn.ExecContext(ctx, "SELECT pg_sleep(60)")
		done <- err
	}()
	admin, err := postgres.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	// Terminate it once it sleeps.
	for {
		var ok bool
		err := admin.QueryRowContext(ctx, "SELECT pg_terminate_backend($1) FROM pg_stat_activity WHERE pid = $1 AND wait_event = 'PgSleep'", pid).Scan(&ok)
		if err == nil && ok {
			break
		}
		if !errors.Is(err, sql.ErrNoRows) {
			t.Fatal(err)
		}
		if ctx.Err() != nil {
			t.Fatal("the statement never started sleeping")
		}
		time.Sleep(5 * time.Millisecond)
	}
	inFlight := <-done
	var pgErr *pgconn.PgError
	if !errors.As(inFlight, &pgErr) || pgErr.Code != "57P01" {
		t.Fatalf("the terminated statement failed with %v, want SQLSTATE 57P01", inFlight)
	}
	if c := (postgres.Dialect{}).Classify(inFlight); c != dialect.Retryable {
		t.Errorf("Classify(%v) = %v, want retryable", inFlight, c)
	}
	_, next := conn.ExecContext(ctx, "SELECT 1")
	if next == nil {
		t.Fatal("a statement on the terminated connection succeeded")
	}
	if c := (postgres.Dialect{}).Classify(next); c != dialect.Retryable {
		t.Errorf("the next statement: Classify(%v) = %v, want retryable", next, c)
	}
}
