package dbwait_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/shiplock/shiplock/dbwait"
	"github.com/shiplock/shiplock/dialect"
	"github.com/shiplock/shiplock/dialect/mysql"
	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

func open(t testing.TB, url string) *sql.DB {
	t.Helper()
	db, err := postgres.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestReadyAtOnce(t *testing.T) {
	db := open(t, testdb.Postgres(t))
	res, err := dbwait.Wait(context.Background(), db, postgres.Dialect{}, dbwait.Options{})
	if err != nil || res.Attempts != 1 {
		t.Fatalf("Wait = %+v, %v; want 1 attempt", res, err)
	}
}

// TestServerStartsLater starts waiting while the server is down, and
// starts it afterwards; then restarts it during a second wait.
func TestServerStartsLater(t *testing.T) {
	t.Parallel()
	srv := testdb.OwnPostgres(t)
	url := srv.URL(srv.CreateDatabase(t, ""), "", "")
	srv.Stop(t)
	db := open(t, url)
	done := make(chan error, 1)
	var res dbwait.Result
	go func() {
		var err error
		res, err = dbwait.Wait(context.Background(), db, postgres.Dialect{}, dbwait.Options{Timeout: time.Minute})
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Wait returned while the server was down: %v", err)
	default:
	}
	srv.Start(t)
	if err := <-done; err != nil {
		t.Fatalf("Wait after start: %v", err)
	}
	if res.Attempts < 2 {
		t.Errorf("attempts = %d, want several", res.Attempts)
	}

	srv.Crash(t)
	go func() {
		_, err := dbwait.Wait(context.Background(), db, postgres.Dialect{}, dbwait.Options{Timeout: time.Minute})
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	srv.Start(t)
	if err := <-done; err != nil {
		t.Fatalf("Wait across a crash and restart: %v", err)
	}
}

func TestWrongPasswordFailsAtOnce(t *testing.T) {
	srv := testdb.PostgresServer(t)
	role := srv.CreateRole(t)
	dbName := srv.CreateDatabase(t, role.Name)
	db := open(t, srv.URL(dbName, role.Name, role.Password+"-wrong"))
	res, err := dbwait.Wait(context.Background(), db, postgres.Dialect{}, dbwait.Options{Timeout: time.Minute})
	var werr *dbwait.Error
	if !errors.As(err, &werr) || werr.Class != dialect.Auth {
		t.Fatalf("Wait = %v, want an auth error", err)
	}
	if res.Attempts != 1 {
		t.Fatalf("attempts = %d, want 1: a wrong password must not be retried", res.Attempts)
	}
	if errors.Is(err, dbwait.ErrTimeout) {
		t.Fatal("a permanent error reported as a timeout")
	}
}

func TestMissingDatabase(t *testing.T) {
	srv := testdb.PostgresServer(t)
	db := open(t, srv.URL("no_such_database_here", "", ""))
	res, err := dbwait.Wait(context.Background(), db, postgres.Dialect{}, dbwait.Options{})
	var werr *dbwait.Error
	if !errors.As(err, &werr) || werr.Class != dialect.MissingDatabase || res.Attempts != 1 {
		t.Fatalf("Wait = %+v, %v; want one attempt and a missing-database error", res, err)
	}
	// With the option, it keeps waiting: bounded by the timeout here.
	res, err = dbwait.Wait(context.Background(), db, postgres.Dialect{}, dbwait.Options{RetryMissingDatabase: true, Timeout: 400 * time.Millisecond})
	if !errors.Is(err, dbwait.ErrTimeout) || res.Attempts < 2 {
		t.Fatalf("Wait retrying a missing database = %+v, %v; want a timeout after several attempts", res, err)
	}
}

func TestRefusedUntilTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	db := open(t, "postgres://u@"+addr+"/db?sslmode=disable")
	res, err := dbwait.Wait(context.Background(), db, postgres.Dialect{}, dbwait.Options{Timeout: 500 * time.Millisecond})
	if !errors.Is(err, dbwait.ErrTimeout) || res.Attempts < 3 {
		t.Fatalf("Wait = %+v, %v; want a timeout after several attempts", res, err)
	}
}

// TestSilentPeer is a listener that accepts and never answers: each attempt
// is abandoned after AttemptTimeout and the wait ends at Timeout.
func TestSilentPeer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold it open, say nothing
		}
	}()
	db := open(t, "postgres://u@"+l.Addr().String()+"/db?sslmode=disable")
	res, err := dbwait.Wait(context.Background(), db, postgres.Dialect{}, dbwait.Options{Timeout: 1500 * time.Millisecond, AttemptTimeout: 300 * time.Millisecond})
	if !errors.Is(err, dbwait.ErrTimeout) || res.Attempts < 2 {
		t.Fatalf("Wait = %+v, %v; want a timeout after several attempts", res, err)
	}
}

func TestSingleAttempt(t *testing.T) {
	db := open(t, "postgres://u@127.0.0.1:1/db?sslmode=disable")
	res, err := dbwait.Wait(context.Background(), db, postgres.Dialect{}, dbwait.Options{Timeout: -1})
	var werr *dbwait.Error
	if !errors.As(err, &werr) || !errors.Is(err, dbwait.ErrTimeout) || werr.Class != dialect.Retryable || werr.Attempts != 1 || res.Attempts != 1 {
		t.Fatalf("Wait = %+v, %v; want one refused (retryable) attempt, then ErrTimeout", res, err)
	}
}

// TestResetLoopLogsOnce: a peer that accepts and resets every connection
// (a proxy whose backend is down) is retried many times, and each distinct
// outcome is logged once, not once per attempt: the message of each
// attempt differs (its local port), what happened does not.
func TestResetLoopLogsOnce(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const resets = 40
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for n := 0; ; n++ {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.(*net.TCPConn).SetLinger(0) // close with RST
			c.Close()
			if n+1 == resets {
				cancel() // enough attempts seen: end the wait
			}
		}
	}()
	var logs bytes.Buffer
	db := open(t, "postgres://u@"+l.Addr().String()+"/db?sslmode=disable")
	res, err := dbwait.Wait(ctx, db, postgres.Dialect{}, dbwait.Options{
		Timeout: time.Hour, Logger: slog.New(slog.NewTextHandler(&logs, nil)), ProgressInterval: -1,
	})
	// database/sql may dial up to three times per attempt.
	if !errors.Is(err, context.Canceled) || res.Attempts < resets/3 {
		t.Fatalf("Wait = %+v, %v; want at least %d attempts, then the cancellation", res, err, resets/3)
	}
	lines := strings.Count(logs.String(), "waiting for the database")
	// A reset reads as "connection reset by peer" or, when it comes while
	// the startup message is written, "broken pipe"; or as an early EOF.
	if lines < 1 || lines > 3 {
		t.Errorf("%d log lines for %d attempts, want one per distinct outcome:\n%s", lines, res.Attempts, logs.String())
	}
}

// cancelOn is a slog.Handler that cancels a context at the first record
// with its message, and keeps that record.
type cancelOn struct {
	msg    string
	cancel context.CancelFunc
	got    chan slog.Record
}

func (h *cancelOn) Enabled(context.Context, slog.Level) bool { return true }
func (h *cancelOn) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		select {
		case h.got <- r.Clone():
			h.cancel()
		default:
		}
	}
	return nil
}
func (h *cancelOn) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *cancelOn) WithGroup(string) slog.Handler      { return h }

// A wait that goes on says so every ProgressInterval, with the reason and
// the attempts so far: one line per distinct outcome is not enough for a
// wait of minutes.
func TestProgressWhileWaiting(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := &cancelOn{msg: "still waiting for the database", cancel: cancel, got: make(chan slog.Record, 1)}
	db := open(t, "postgres://u@"+addr+"/db?sslmode=disable")
	_, err = dbwait.Wait(ctx, db, postgres.Dialect{}, dbwait.Options{Timeout: time.Hour, Logger: slog.New(h), ProgressInterval: 50 * time.Millisecond})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v, want it cancelled by the progress line", err)
	}
	r := <-h.got
	var reason string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "reason" {
			reason = a.Value.String()
		}
		return true
	})
	if !strings.Contains(reason, "refused") {
		t.Errorf("progress line's reason %q, want the refused connection", reason)
	}
}

// openMySQL opens the mysql:// URL u with the MySQL dialect's Open.
func openMySQL(t testing.TB, u string) *sql.DB {
	t.Helper()
	cfg, err := mysql.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	db := mysql.Open(cfg)
	t.Cleanup(func() { db.Close() })
	return db
}

// TestMySQLErrorsClassified: on MariaDB, a wrong password (1045) and an
// unknown database (1049) end the wait at the first attempt with their
// class; a refused port is retried until the timeout.
func TestMySQLErrorsClassified(t *testing.T) {
	good, err := url.Parse(testdb.MySQL(t))
	if err != nil {
		t.Fatal(err)
	}
	wrongPassword := *good
	wrongPassword.User = url.UserPassword(good.User.Username(), "not-the-password")
	unknownDB := *good
	unknownDB.Path = "/no_such_database_here"
	for _, tc := range []struct {
		name  string
		url   string
		class dialect.ErrorClass
	}{
		{"wrong password", wrongPassword.String(), dialect.Auth},
		{"unknown database", unknownDB.String(), dialect.MissingDatabase},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := dbwait.Wait(context.Background(), openMySQL(t, tc.url), mysql.Dialect{}, dbwait.Options{Timeout: time.Minute})
			var werr *dbwait.Error
			if !errors.As(err, &werr) || werr.Class != tc.class || res.Attempts != 1 || errors.Is(err, dbwait.ErrTimeout) {
				t.Fatalf("Wait = %+v, %v; want one attempt and class %v", res, err, tc.class)
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		res, err := dbwait.Wait(context.Background(), openMySQL(t, "mysql://root@"+addr+"/db"), mysql.Dialect{}, dbwait.Options{Timeout: 500 * time.Millisecond})
		var werr *dbwait.Error
		if !errors.Is(err, dbwait.ErrTimeout) || res.Attempts < 3 || !errors.As(err, &werr) || werr.Class != dialect.Retryable {
			t.Fatalf("Wait = %+v, %v; want a retryable timeout after several attempts", res, err)
		}
	})
	t.Run("ready", func(t *testing.T) {
		res, err := dbwait.Wait(context.Background(), openMySQL(t, good.String()), mysql.Dialect{}, dbwait.Options{})
		if err != nil || res.Attempts != 1 {
			t.Fatalf("Wait = %+v, %v; want 1 attempt", res, err)
		}
	})
}
