package dialecttest

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/shiplock/shiplock/dialect"
)

// RunRunner checks the Runner: RunTx's statement semantics and failures
// (the failing statement's index, nothing left open), Settings in effect
// inside RunTx, InTx and WithSession and the session's own values after,
// InTx's rollback, and ImplicitCommit against what the server does.
func RunRunner(t *testing.T, o Options) {
	parts(t, o, map[string]func(*testing.T, Options, Opener){
		"RunTx":          testRunTx,
		"Settings":       testSettings,
		"InTx":           testInTx,
		"ImplicitCommit": testImplicitCommit,
	})
}

var errFn = errors.New("dialecttest: fn failed")

func testRunTx(t *testing.T, o Options, open Opener) {
	ctx := context.Background()
	c, d := conn(t, open)
	settings := dialect.Settings{LockTimeout: 5 * time.Second, StatementTimeout: time.Minute}
	createTable(t, c, "CREATE TABLE s (n int)")
	if err := d.CreateVersionTable(ctx, c); err != nil {
		t.Fatal(err)
	}
	stmts := []string{
		"INSERT INTO s VALUES (1);\n-- a comment, no newline after",
		"INSERT INTO s VALUES (2)", // no semicolon
	}
	stmts = append(stmts, d.AppliedStatements(dialect.Record{Version: 7})...)
	if err := d.RunTx(ctx, c, settings, stmts); err != nil {
		t.Fatalf("RunTx: %v", err)
	}
	if n := count(t, c, "s"); n != 2 {
		t.Fatalf("rows = %d; want 2", n)
	}
	if rows, err := d.ListVersions(ctx, c); err != nil || len(rows) != 2 || rows[0].Version != 7 {
		t.Fatalf("versions after RunTx = %+v, %v; want 7 recorded", rows, err)
	}
	for _, tc := range []struct {
		name     string
		settings dialect.Settings
		stmts    []string
		want     int
	}{
		{"statement", settings, []string{"INSERT INTO s VALUES (3);", "INSERT INTO missing VALUES (1);", "INSERT INTO s VALUES (4);"}, 1},
		{"first statement", dialect.Settings{}, []string{"SELEC 1;", "INSERT INTO s VALUES (5);"}, 0},
		{"last", dialect.Settings{AsyncCommit: true}, []string{"INSERT INTO s VALUES (6);", "INSERT INTO missing VALUES (1)"}, 1},
	} {
		err := d.RunTx(ctx, c, tc.settings, tc.stmts)
		var terr *dialect.TxError
		if !errors.As(err, &terr) || terr.Index != tc.want {
			t.Errorf("%s: RunTx = %v; want a *dialect.TxError at part %d", tc.name, err, tc.want)
		}
		if n := count(t, c, "s"); n != 2 {
			t.Fatalf("%s: rows after a failed RunTx = %d; want 2: it left changes", tc.name, n)
		}
	}
	noneOpen(t, c, d, open, "s")
	// An asynchronous commit is a commit.
	if err := d.RunTx(ctx, c, dialect.Settings{AsyncCommit: true}, []string{"INSERT INTO s (n) VALUES (8)"}); err != nil {
		t.Fatalf("RunTx with AsyncCommit: %v", err)
	}
	if err := d.Flush(ctx, c); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	c2, _ := conn(t, open)
	if n := count(t, c2, "s"); n != 3 {
		t.Fatalf("rows seen by another session after an asynchronous commit = %d; want 3", n)
	}
}

// noneOpen checks that c holds no transaction (and so no lock) on table:
// the dialect's own view of the session, where it has one, and another
// session changing the table's definition within a lock timeout.
func noneOpen(t *testing.T, c *sql.Conn, d dialect.Dialect, open Opener, table string) {
	t.Helper()
	if ts, ok := d.(dialect.TxStater); ok && ts.InTxBlock(c) {
		t.Fatal("the session is left inside a transaction block")
	}
	other, _ := conn(t, open)
	err := d.RunTx(context.Background(), other, dialect.Settings{LockTimeout: 5 * time.Second}, []string{"ALTER TABLE " + table + " ADD COLUMN open_check int"})
	if err != nil {
		t.Fatalf("another session cannot alter %s (a transaction left open?): %v", table, err)
	}
}

// testSettings: Settings are in effect inside RunTx, InTx and WithSession,
// and the session's own values are back after, also after a failure.
func testSettings(t *testing.T, o Options, open Opener) {
	if o.SettingsQuery == "" {
		t.Skip("the dialect's Runner has no settings (Options.SettingsQuery is empty)")
	}
	ctx := context.Background()
	c, d := conn(t, open)
	createTable(t, c, "CREATE TABLE probe (lock_ms bigint, statement_ms bigint)")
	before := readSettings(t, o, c)
	// Whole seconds: MySQL's lock_wait_timeout has no finer unit.
	want := dialect.Settings{LockTimeout: 3 * time.Second, StatementTimeout: 70 * time.Second}
	if before == want {
		t.Fatalf("the session's own settings are the test's (%+v): the test cannot tell them apart", before)
	}
	restored := func(what string) {
		t.Helper()
		if got := readSettings(t, o, c); got != before {
			t.Errorf("after %s the session's settings are %+v; want its own, %+v", what, got, before)
		}
	}

	if err := d.RunTx(ctx, c, want, []string{"INSERT INTO probe (lock_ms, statement_ms) " + o.SettingsQuery}); err != nil {
		t.Fatalf("RunTx: %v", err)
	}
	var lock, statement int64
	if err := c.QueryRowContext(ctx, "SELECT lock_ms, statement_ms FROM probe").Scan(&lock, &statement); err != nil {
		t.Fatal(err)
	}
	if got := (dialect.Settings{LockTimeout: time.Duration(lock) * time.Millisecond, StatementTimeout: time.Duration(statement) * time.Millisecond}); got != want {
		t.Errorf("settings inside RunTx = %+v; want %+v", got, want)
	}
	restored("RunTx")
	if err := d.RunTx(ctx, c, want, []string{"SELEC 1"}); err == nil {
		t.Fatal("RunTx of a syntax error succeeded")
	}
	restored("a failed RunTx")

	for _, fail := range []bool{false, true} {
		err := d.InTx(ctx, c, want, func(tx *sql.Tx) error {
			if got := readSettings(t, o, tx); got != want {
				t.Errorf("settings inside InTx = %+v; want %+v", got, want)
			}
			if fail {
				return errFn
			}
			return nil
		})
		if fail != errors.Is(err, errFn) || (!fail && err != nil) {
			t.Errorf("InTx (fn failing: %v) = %v", fail, err)
		}
		restored("InTx")

		inner := dialect.Settings{LockTimeout: 2 * time.Second}
		err = d.WithSession(ctx, c, want, func() error {
			if got := readSettings(t, o, c); got != want {
				t.Errorf("settings inside WithSession = %+v; want %+v", got, want)
			}
			// Nested: the outer values are the session's own now.
			if err := d.WithSession(ctx, c, inner, func() error {
				if got := readSettings(t, o, c); got != (dialect.Settings{LockTimeout: inner.LockTimeout, StatementTimeout: want.StatementTimeout}) {
					t.Errorf("settings inside a nested WithSession = %+v; want the lock timeout %v, the statement timeout %v", got, inner.LockTimeout, want.StatementTimeout)
				}
				return nil
			}); err != nil {
				return err
			}
			if got := readSettings(t, o, c); got != want {
				t.Errorf("settings after a nested WithSession = %+v; want the outer's %+v", got, want)
			}
			if fail {
				return errFn
			}
			return nil
		})
		if fail != errors.Is(err, errFn) || (!fail && err != nil) {
			t.Errorf("WithSession (fn failing: %v) = %v", fail, err)
		}
		restored("WithSession")
	}
}

// testInTx: InTx commits what fn did when it returns nil, and rolls it
// back and returns fn's error otherwise.
func testInTx(t *testing.T, _ Options, open Opener) {
	ctx := context.Background()
	c, d := conn(t, open)
	createTable(t, c, "CREATE TABLE r (n int)")
	insert := func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO r VALUES (1)")
		return err
	}
	err := d.InTx(ctx, c, dialect.Settings{LockTimeout: 5 * time.Second}, func(tx *sql.Tx) error {
		if err := insert(tx); err != nil {
			return err
		}
		return errFn
	})
	if !errors.Is(err, errFn) {
		t.Fatalf("InTx with fn failing = %v; want fn's error", err)
	}
	if n := count(t, c, "r"); n != 0 {
		t.Fatalf("rows after InTx rolled back = %d; want 0", n)
	}
	if err := d.InTx(ctx, c, dialect.Settings{AsyncCommit: true}, insert); err != nil {
		t.Fatalf("InTx: %v", err)
	}
	c2, _ := conn(t, open)
	if n := count(t, c2, "r"); n != 1 {
		t.Fatalf("rows another session sees after InTx = %d; want 1", n)
	}
	noneOpen(t, c, d, open, "r")
}

// testImplicitCommit asks the server whether a DDL statement commits an
// open transaction (a row inserted before it survives the rollback), and
// checks that ImplicitCommit says the same; data statements never commit.
func testImplicitCommit(t *testing.T, _ Options, open Opener) {
	ctx := context.Background()
	c, d := conn(t, open)
	createTable(t, c, "CREATE TABLE ic (n int)")
	const ddl = "CREATE TABLE ic_new (n int)"
	err := d.InTx(ctx, c, dialect.Settings{}, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "INSERT INTO ic VALUES (1)"); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, ddl); err != nil {
			return err
		}
		return errFn
	})
	if !errors.Is(err, errFn) {
		t.Fatalf("InTx = %v", err)
	}
	committed := count(t, c, "ic") == 1
	if got := d.ImplicitCommit(ddl); got != committed {
		t.Errorf("ImplicitCommit(%q) = %v; the server committed the open transaction: %v", ddl, got, committed)
	}
	for _, s := range []string{"INSERT INTO ic VALUES (2)", "UPDATE ic SET n = 3", "DELETE FROM ic", "SELECT 1"} {
		if d.ImplicitCommit(s) {
			t.Errorf("ImplicitCommit(%q) = true; want false", s)
		}
	}
}
