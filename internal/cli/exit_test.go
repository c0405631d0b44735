package cli

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mysqldriver "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shiplock/shiplock/dbwait"
	"github.com/shiplock/shiplock/dialect"
	mysqldialect "github.com/shiplock/shiplock/dialect/mysql"
	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/exitcode"
	"github.com/shiplock/shiplock/internal/testdb"
	"github.com/shiplock/shiplock/migrate"
	"github.com/shiplock/shiplock/migrate/sqlfile"
)

// TestClassify is the mapping table: each kind of error, the code it exits
// with.
func TestClassify(t *testing.T) {
	pg := func(code string) error {
		return &migrate.MigrationError{Version: 2, File: "00002_x.sql", Line: 3, Err: &pgconn.PgError{Code: code}}
	}
	partial := func(err error) error { return &migrate.PartialError{Err: err} }
	my := func(n uint16) error {
		return &migrate.MigrationError{Version: 2, File: "00002_x.sql", Line: 3, Err: &mysqldriver.MySQLError{Number: n}}
	}
	tests := []struct {
		name    string
		err     error
		c       dialect.Classifier
		stopped bool
		want    exitcode.Code
	}{
		{"nil", nil, postgres.Dialect{}, false, exitcode.OK},
		{"syntax error", partial(pg("42601")), postgres.Dialect{}, false, exitcode.Failed},
		{"constraint", pg("23505"), postgres.Dialect{}, false, exitcode.Failed},
		{"statement timeout", pg("57014"), postgres.Dialect{}, false, exitcode.Failed},
		{"unknown", errors.New("a Go migration's own error"), postgres.Dialect{}, false, exitcode.Failed},
		{"usage", usagef("bad flag"), nil, false, exitcode.Usage},
		{"parse", &sqlfile.ParseError{File: "x.sql", Line: 1}, nil, false, exitcode.BadFile},
		{"file", &migrate.FileError{File: "x.sql"}, nil, false, exitcode.BadFile},
		{"statement committing by itself in mode all", &migrate.PartialError{Err: &migrate.ImplicitCommitError{File: "x.sql", Line: 3}}, nil, false, exitcode.BadFile},
		{"integrity", &migrate.IntegrityError{}, postgres.Dialect{}, false, exitcode.Integrity},
		{"password", fmt.Errorf("connect: %w", &pgconn.PgError{Code: "28P01"}), postgres.Dialect{}, false, exitcode.Auth},
		{"missing database", &dbwait.Error{Class: dialect.MissingDatabase, Err: errors.New("x")}, postgres.Dialect{}, false, exitcode.Auth},
		{"tls", &dbwait.Error{Class: dialect.Permanent, Err: errors.New("x")}, postgres.Dialect{}, false, exitcode.Failed},
		{"wait timeout", fmt.Errorf("wait: %w", dbwait.ErrTimeout), postgres.Dialect{}, false, exitcode.Unavailable},
		{"admin shutdown", partial(pg("57P01")), postgres.Dialect{}, false, exitcode.Unavailable},
		{"crash shutdown", pg("57P02"), postgres.Dialect{}, false, exitcode.Unavailable},
		{"cannot connect now", pg("57P03"), postgres.Dialect{}, false, exitcode.Unavailable},
		{"connection failure", pg("08006"), postgres.Dialect{}, false, exitcode.Unavailable},
		{"eof", fmt.Errorf("record: %w", io.ErrUnexpectedEOF), postgres.Dialect{}, false, exitcode.Unavailable},
		{"reset", fmt.Errorf("check schema: %w", &net.OpError{Op: "read", Err: syscall.ECONNRESET}), postgres.Dialect{}, false, exitcode.Unavailable},
		{"closed", fmt.Errorf("commit: %w", pgconn.ErrConnClosed), postgres.Dialect{}, false, exitcode.Unavailable},
		{"bad conn", fmt.Errorf("commit: %w", sql.ErrConnDone), postgres.Dialect{}, false, exitcode.Unavailable},
		{"lock timeout", partial(pg("55P03")), postgres.Dialect{}, false, exitcode.Locked},
		{"deadlock", pg("40P01"), postgres.Dialect{}, false, exitcode.Locked},
		{"migration lock", fmt.Errorf("up: %w", migrate.ErrLockTimeout), postgres.Dialect{}, false, exitcode.Locked},
		{"deadline", fmt.Errorf("check: %w", context.DeadlineExceeded), nil, false, exitcode.Unavailable},
		{"stopped", partial(migrate.ErrStopped), postgres.Dialect{}, false, exitcode.Stopped},
		{"canceled", fmt.Errorf("apply: %w", context.Canceled), postgres.Dialect{}, false, exitcode.Stopped},
		// A query canceled on the way out of a stopped run: the stop decides.
		{"canceled by the stop", pg("57014"), postgres.Dialect{}, true, exitcode.Stopped},
		{"bad file, then stopped", &migrate.FileError{File: "x.sql"}, nil, true, exitcode.BadFile},
		{"exit error", &exitError{code: exitcode.Pending}, nil, true, exitcode.Pending},
		// MySQL and MariaDB, by the MySQL dialect's classes.
		{"mysql syntax error", partial(my(1064)), mysqldialect.Dialect{}, false, exitcode.Failed},
		{"mysql wrong password", fmt.Errorf("connect: %w", my(1045)), mysqldialect.Dialect{}, false, exitcode.Auth},
		{"mysql lock wait timeout", partial(my(1205)), mysqldialect.Dialect{}, false, exitcode.Locked},
		{"mysql deadlock", my(1213), mysqldialect.Dialect{}, false, exitcode.Locked},
		{"mysql too many connections", my(1040), mysqldialect.Dialect{}, false, exitcode.Unavailable},
		{"mysql shutdown", partial(my(1053)), mysqldialect.Dialect{}, false, exitcode.Unavailable},
		{"mysql invalid connection", fmt.Errorf("commit: %w", mysqldriver.ErrInvalidConn), mysqldialect.Dialect{}, false, exitcode.Unavailable},
		{"mysql bad conn", fmt.Errorf("exec: %w", driver.ErrBadConn), mysqldialect.Dialect{}, false, exitcode.Unavailable},
		// Without a classifier (no database opened), a driver error is not
		// guessed at.
		{"no classifier", pg("57P01"), nil, false, exitcode.Failed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classify(tt.err, tt.c, tt.stopped); got != tt.want {
				t.Errorf("classify(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// run runs shiplock in-process with args and an empty environment, and
// returns its exit code and stderr.
func run(ctx context.Context, args ...string) (exitcode.Code, string) {
	return runStop(ctx, nil, args...)
}

// runStop is run with a stop channel, closed as the first SIGTERM does.
func runStop(ctx context.Context, stop <-chan struct{}, args ...string) (exitcode.Code, string) {
	var out, errOut bytes.Buffer
	code := Main(ctx, args, Streams{Out: &out, Err: &errOut, Stop: stop, LookupEnv: func(string) (string, bool) { return "", false }})
	return exitcode.Code(code), out.String() + errOut.String()
}

func writeDir(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const sleepMigration = "-- +goose Up\nCREATE TABLE t (id int);\nSELECT pg_sleep(60);\n-- +goose Down\nDROP TABLE t;\n"

// upWhileSleeping starts "up" on a migration that sleeps, calls during
// once the sleep runs on the server (with the backend's pid), and returns
// how up ended.
func upWhileSleeping(t *testing.T, ctx context.Context, url string, during func(pid int), args ...string) (exitcode.Code, string) {
	return upWhileSleepingStop(t, ctx, nil, url, during, args...)
}

func upWhileSleepingStop(t *testing.T, ctx context.Context, stop <-chan struct{}, url string, during func(pid int), args ...string) (exitcode.Code, string) {
	t.Helper()
	dir := writeDir(t, map[string]string{"00001_sleep.sql": sleepMigration})
	type result struct {
		code exitcode.Code
		out  string
	}
	done := make(chan result, 1)
	go func() {
		code, out := runStop(ctx, stop, append([]string{"up", "--dir", dir, "--database-url", url, "--log-format", "text"}, args...)...)
		done <- result{code, out}
	}()
	admin, err := postgres.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	wctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		var pid int
		err := admin.QueryRowContext(wctx, "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'PgSleep' AND pid <> pg_backend_pid()").Scan(&pid)
		if err == nil {
			during(pid)
			break
		}
		select {
		case r := <-done:
			t.Fatalf("up ended before its migration slept: exit %v\n%s", r.code, r.out)
		default:
		}
		if !errors.Is(err, sql.ErrNoRows) || wctx.Err() != nil {
			t.Fatalf("find the sleeping migration: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	r := <-done
	return r.code, r.out
}

// TestExitTerminatedBackend: a migration whose backend is terminated
// (pg_terminate_backend: 57P01 admin_shutdown) exits retryable, and says
// so.
func TestExitTerminatedBackend(t *testing.T) {
	t.Parallel()
	url := testdb.Postgres(t)
	code, out := upWhileSleeping(t, context.Background(), url, func(pid int) {
		db, err := postgres.Open(url)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec("SELECT pg_terminate_backend($1)", pid); err != nil {
			t.Fatal(err)
		}
	})
	if code != exitcode.Unavailable || !strings.Contains(out, "57P01") || !strings.Contains(out, "running the same command again can succeed") {
		t.Fatalf("up with its backend terminated: exit %v, want %v\n%s", code, exitcode.Unavailable, out)
	}
	// A rerun succeeds: retrying was right.
	dir := writeDir(t, map[string]string{"00001_sleep.sql": strings.Replace(sleepMigration, "pg_sleep(60)", "pg_sleep(0)", 1)})
	if code, out := run(context.Background(), "up", "--dir", dir, "--database-url", url); code != exitcode.OK {
		t.Fatalf("rerun: exit %v\n%s", code, out)
	}
}

// TestExitServerStopped: the server shuts down (fast and immediate) in the
// middle of a migration: retryable.
func TestExitServerStopped(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"fast", "immediate"} {
		t.Run(mode, func(t *testing.T) {
			s := testdb.OwnPostgres(t)
			url := s.URL(s.CreateDatabase(t, ""), "", "")
			code, out := upWhileSleeping(t, context.Background(), url, func(int) {
				if mode == "fast" {
					s.Stop(t)
				} else {
					s.Crash(t)
				}
			})
			if code != exitcode.Unavailable {
				t.Fatalf("up with the server stopped (%s): exit %v, want %v\n%s", mode, code, exitcode.Unavailable, out)
			}
		})
	}
}

// TestExitStopped: told to stop while a statement runs, as SIGTERM does
// (Streams.Stop closes; the statement outlasts --stop-grace), or with
// Main's context canceled: retryable, exit 9.
func TestExitStopped(t *testing.T) {
	t.Parallel()
	t.Run("stop", func(t *testing.T) {
		t.Parallel()
		url := testdb.Postgres(t)
		stop := make(chan struct{})
		code, out := upWhileSleepingStop(t, context.Background(), stop, url, func(int) { close(stop) }, "--stop-grace", "100ms")
		if code != exitcode.Stopped {
			t.Fatalf("up told to stop: exit %v, want %v\n%s", code, exitcode.Stopped, out)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		t.Parallel()
		url := testdb.Postgres(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		code, out := upWhileSleeping(t, ctx, url, func(int) { cancel() })
		if code != exitcode.Stopped {
			t.Fatalf("up canceled: exit %v, want %v\n%s", code, exitcode.Stopped, out)
		}
	})
}

// TestExitLockConflict: a table lock held longer than --ddl-lock-timeout
// and its retries exits 7, retryable.
func TestExitLockConflict(t *testing.T) {
	t.Parallel()
	url := testdb.Postgres(t)
	db, err := postgres.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE busy (id int)"); err != nil {
		t.Fatal(err)
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec("LOCK TABLE busy IN ACCESS SHARE MODE"); err != nil {
		t.Fatal(err)
	}
	dir := writeDir(t, map[string]string{"00001_alter.sql": "-- +goose Up\nALTER TABLE busy ADD COLUMN x int;\n"})
	code, out := run(context.Background(), "up", "--dir", dir, "--database-url", url, "--ddl-lock-timeout", "20ms", "--ddl-retries", "1")
	if code != exitcode.Locked || !strings.Contains(out, "55P03") {
		t.Fatalf("up behind a table lock: exit %v, want %v\n%s", code, exitcode.Locked, out)
	}
}

// TestExitSyntaxError: a migration's own SQL error stays permanent.
func TestExitSyntaxError(t *testing.T) {
	t.Parallel()
	url := testdb.Postgres(t)
	dir := writeDir(t, map[string]string{"00001_bad.sql": "-- +goose Up\nCREATE TABLEE t (id int);\n"})
	code, out := run(context.Background(), "up", "--dir", dir, "--database-url", url)
	if code != exitcode.Failed || !strings.Contains(out, "42601") || strings.Contains(out, "can succeed") {
		t.Fatalf("up with a syntax error: exit %v, want %v\n%s", code, exitcode.Failed, out)
	}
}

// resetListener accepts connections on loopback and resets each at once
// (SO_LINGER 0), as a server or proxy that drops connections does.
func resetListener(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*net.TCPConn).SetLinger(0)
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// TestExitCheckReset: check on a connection that is reset exits 6, like
// every other command, not 1.
func TestExitCheckReset(t *testing.T) {
	t.Parallel()
	url := "postgres://postgres@" + resetListener(t) + "/app?sslmode=disable&connect_timeout=5"
	code, out := run(context.Background(), "check", "--version", "1", "--database-url", url)
	if code != exitcode.Unavailable {
		t.Fatalf("check on a reset connection: exit %v, want %v\n%s", code, exitcode.Unavailable, out)
	}
	// The other commands agree.
	dir := writeDir(t, map[string]string{"00001_t.sql": "-- +goose Up\nSELECT 1;\n"})
	if code, out := run(context.Background(), "up", "--dir", dir, "--database-url", url, "--wait-timeout", "0"); code != exitcode.Unavailable {
		t.Fatalf("up on a reset connection: exit %v, want %v\n%s", code, exitcode.Unavailable, out)
	}
}
