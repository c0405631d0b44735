package dialecttest

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/shiplock/shiplock/dialect"
)

// RunClassifier checks the Classifier on errors the dialect's server
// really produces: a syntax error is Permanent; a statement that gives up
// waiting for another session's lock under Settings.LockTimeout is a
// LockConflict, in RunTx and under WithSession; and, for a database with a
// server (Options.Faults), a wrong password is Auth, an unknown database
// MissingDatabase and a refused connection Retryable.
func RunClassifier(t *testing.T, o Options) {
	ps := map[string]func(*testing.T, Options, Opener){
		"Syntax":       testSyntax,
		"LockConflict": testLockConflict,
	}
	if o.Faults == nil {
		t.Run("Connect", func(t *testing.T) {
			t.Skip("no server to connect to (Options.Faults is nil)")
		})
	} else {
		ps["Auth"] = func(t *testing.T, o Options, open Opener) {
			testConnect(t, open, o.Faults.WrongPassword, dialect.Auth)
		}
		ps["MissingDatabase"] = func(t *testing.T, o Options, open Opener) {
			testConnect(t, open, o.Faults.MissingDatabase, dialect.MissingDatabase)
		}
		ps["Refused"] = func(t *testing.T, o Options, open Opener) {
			testConnect(t, open, func(t testing.TB) *sql.DB { return o.Faults.Port(t, closedPort(t)) }, dialect.Retryable)
		}
	}
	parts(t, o, ps)
}

func testSyntax(t *testing.T, _ Options, open Opener) {
	ctx := context.Background()
	c, d := conn(t, open)
	_, err := c.ExecContext(ctx, "SELEC 1")
	if err == nil || d.Classify(err) != dialect.Permanent {
		t.Errorf("a syntax error (%v) is classified %v; want %v", err, d.Classify(err), dialect.Permanent)
	}
	err = d.RunTx(ctx, c, dialect.Settings{}, []string{"SELECT 1", "SELEC 1"})
	var terr *dialect.TxError
	if !errors.As(err, &terr) || terr.Index != 1 || d.Classify(err) != dialect.Permanent {
		t.Errorf("RunTx of a syntax error = %v, classified %v; want a TxError at 1, %v", err, d.Classify(err), dialect.Permanent)
	}
}

// testLockConflict: one session holds a transaction that read a table; a
// second one's DDL on it waits for the lock and gives up after its
// Settings.LockTimeout (on SQLite, the opener's busy timeout), inside
// RunTx and under WithSession alike. Once the first session ends its
// transaction, the second's DDL goes through: nothing was left open.
func testLockConflict(t *testing.T, o Options, open Opener) {
	ctx := context.Background()
	blocker, d := conn(t, open)
	c, _ := conn(t, open)
	createTable(t, blocker, "CREATE TABLE lt (n int)")
	var before dialect.Settings
	if o.SettingsQuery != "" {
		before = readSettings(t, o, c)
	}
	tx, err := blocker.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM lt").Scan(&n); err != nil {
		t.Fatal(err)
	}
	const ddl = "ALTER TABLE lt ADD COLUMN m int"
	s := dialect.Settings{LockTimeout: time.Second}
	err = d.RunTx(ctx, c, s, []string{ddl})
	var terr *dialect.TxError
	if !errors.As(err, &terr) || d.Classify(err) != dialect.LockConflict {
		t.Errorf("RunTx of DDL behind another session's transaction = %v, classified %v; want a TxError, %v", err, d.Classify(err), dialect.LockConflict)
	}
	err = d.WithSession(ctx, c, s, func() error {
		_, err := c.ExecContext(ctx, ddl)
		return err
	})
	if err == nil || d.Classify(err) != dialect.LockConflict {
		t.Errorf("DDL under WithSession behind another session's transaction = %v, classified %v; want %v", err, d.Classify(err), dialect.LockConflict)
	}
	if o.SettingsQuery != "" {
		if got := readSettings(t, o, c); got != before {
			t.Errorf("settings after the lock conflicts = %+v; want the session's own, %+v", got, before)
		}
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := d.RunTx(ctx, c, s, []string{ddl}); err != nil {
		t.Fatalf("RunTx of the DDL once the other transaction ended: %v", err)
	}
}

// testConnect opens a handle with open, pings it and checks the error's
// class.
func testConnect(t *testing.T, dialectOf Opener, open func(testing.TB) *sql.DB, want dialect.ErrorClass) {
	db, d := dialectOf(t)
	db.Close()
	if open == nil {
		t.Fatal("dialecttest: a Faults function is nil")
	}
	bad := open(t)
	defer bad.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := bad.PingContext(ctx)
	if err == nil {
		t.Fatalf("connected; want a %v error", want)
	}
	if got := d.Classify(err); got != want {
		t.Errorf("Classify(%v) = %v; want %v", err, got, want)
	}
}

// closedPort returns a loopback TCP port that nothing listens on: one the
// kernel just gave out and that was closed again.
func closedPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}
