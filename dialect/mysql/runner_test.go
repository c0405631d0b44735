package mysql_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/shiplock/shiplock/dialect"
	"github.com/shiplock/shiplock/dialect/mysql"
	"github.com/shiplock/shiplock/internal/testdb"
)

// bounds reads the session variables shiplock's Settings change.
func bounds(t testing.TB, q dialect.Querier) string {
	t.Helper()
	return queryString(t, q, "SELECT CONCAT_WS(' ', @@SESSION.lock_wait_timeout, @@SESSION.innodb_lock_wait_timeout, @@SESSION.max_statement_time)")
}

// TestSettings: each of RunTx, InTx and WithSession runs with the bounds
// in effect (seconds rounded up, at least 1; max_statement_time
// fractional) and leaves the session's own values, also after a failure;
// the zero Settings change nothing.
func TestSettings(t *testing.T) {
	ctx := context.Background()
	db := open(t, testdb.MySQL(t))
	c := pin(t, db)
	var d mysql.Dialect
	if _, err := c.ExecContext(ctx, "CREATE TABLE seen (how varchar(20), b varchar(100))"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ExecContext(ctx, "SET SESSION lock_wait_timeout = 77, SESSION innodb_lock_wait_timeout = 33, SESSION max_statement_time = 44.5"); err != nil {
		t.Fatal(err)
	}
	own := bounds(t, c)
	record := "INSERT INTO seen SELECT '%s', CONCAT_WS(' ', @@SESSION.lock_wait_timeout, @@SESSION.innodb_lock_wait_timeout, @@SESSION.max_statement_time)"
	fail := errors.New("fn failed")
	for _, tc := range []struct {
		s    dialect.Settings
		want string
	}{
		{dialect.Settings{LockTimeout: 1500 * time.Millisecond, StatementTimeout: 2500 * time.Millisecond}, "2 2 2.500000"},
		{dialect.Settings{LockTimeout: 100 * time.Millisecond}, "1 1 44.500000"},
		{dialect.Settings{StatementTimeout: 250 * time.Microsecond}, "77 33 0.000250"},
		{dialect.Settings{AsyncCommit: true}, own},
	} {
		if _, err := c.ExecContext(ctx, "DELETE FROM seen"); err != nil {
			t.Fatal(err)
		}
		if err := d.RunTx(ctx, c, tc.s, []string{fmt.Sprintf(record, "RunTx")}); err != nil {
			t.Fatalf("RunTx: %v", err)
		}
		if err := d.InTx(ctx, c, tc.s, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, fmt.Sprintf(record, "InTx"))
			return err
		}); err != nil {
			t.Fatalf("InTx: %v", err)
		}
		if err := d.WithSession(ctx, c, tc.s, func() error {
			_, err := c.ExecContext(ctx, fmt.Sprintf(record, "WithSession"))
			return err
		}); err != nil {
			t.Fatalf("WithSession: %v", err)
		}
		if err := d.WithSession(ctx, c, tc.s, func() error { return fail }); err != fail {
			t.Fatalf("WithSession = %v, want fn's error", err)
		}
		if err := d.InTx(ctx, c, tc.s, func(*sql.Tx) error { return fail }); err != fail {
			t.Fatalf("InTx = %v, want fn's error", err)
		}
		var terr *dialect.TxError
		if err := d.RunTx(ctx, c, tc.s, []string{"SELEC 1"}); !errors.As(err, &terr) || terr.Index != 0 {
			t.Fatalf("RunTx of a bad statement = %v", err)
		}
		rows, err := c.QueryContext(ctx, "SELECT how, b FROM seen")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			var how, b string
			if err := rows.Scan(&how, &b); err != nil {
				t.Fatal(err)
			}
			if b != tc.want {
				t.Errorf("%+v: %s ran with %q, want %q", tc.s, how, b, tc.want)
			}
			n++
		}
		rows.Close()
		if n != 3 {
			t.Fatalf("%d rows recorded, want 3", n)
		}
		if after := bounds(t, c); after != own {
			t.Fatalf("%+v: session bounds after = %q, want its own %q", tc.s, after, own)
		}
	}
}

// TestRunTxRollsBack1205: InnoDB's lock wait timeout (1205) rolls back
// only the statement and leaves the transaction open; RunTx rolls it back,
// so the statements before it leave nothing and the session is idle.
func TestRunTxRollsBack1205(t *testing.T) {
	ctx := context.Background()
	url := testdb.MySQL(t)
	db := open(t, url)
	blocker, c := pin(t, db), pin(t, db)
	var d mysql.Dialect
	for _, q := range []string{"CREATE TABLE r (id int PRIMARY KEY, n int) ENGINE=InnoDB", "INSERT INTO r VALUES (1, 0)", "CREATE TABLE w (n int) ENGINE=InnoDB"} {
		if _, err := c.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{"START TRANSACTION", "SELECT * FROM r WHERE id = 1 FOR UPDATE"} {
		if _, err := blocker.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	err := d.RunTx(ctx, c, dialect.Settings{LockTimeout: time.Second}, []string{"INSERT INTO w VALUES (1)", "UPDATE r SET n = 1 WHERE id = 1", "INSERT INTO w VALUES (2)"})
	var terr *dialect.TxError
	var me *gomysql.MySQLError
	if !errors.As(err, &terr) || terr.Index != 1 || !errors.As(err, &me) || me.Number != 1205 {
		t.Fatalf("RunTx = %v; want a TxError at statement 1 with 1205", err)
	}
	if class := d.Classify(err); class != dialect.LockConflict {
		t.Errorf("Classify(1205) = %v", class)
	}
	if in := queryString(t, c, "SELECT @@in_transaction"); in != "0" {
		t.Fatalf("@@in_transaction = %s after RunTx: a transaction was left open", in)
	}
	if n := queryString(t, blocker, "SELECT COUNT(*) FROM w"); n != "0" {
		t.Fatalf("%s rows in w: the statement before the timeout was kept", n)
	}
	if _, err := blocker.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	if err := d.RunTx(ctx, c, dialect.Settings{LockTimeout: time.Second}, []string{"INSERT INTO w VALUES (1)", "UPDATE r SET n = 1 WHERE id = 1"}); err != nil {
		t.Fatalf("RunTx once the blocker is gone: %v", err)
	}
}

// TestDDLLockTimeout: an ALTER behind an open transaction fails with 1205
// (a LockConflict) after lock_wait_timeout instead of queueing every later
// reader behind it, and succeeds once the transaction ends.
func TestDDLLockTimeout(t *testing.T) {
	ctx := context.Background()
	db := open(t, testdb.MySQL(t))
	blocker, c := pin(t, db), pin(t, db)
	var d mysql.Dialect
	if _, err := c.ExecContext(ctx, "CREATE TABLE a (n int) ENGINE=InnoDB"); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"START TRANSACTION", "SELECT * FROM a"} {
		if _, err := blocker.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	alter := func() error {
		return d.WithSession(ctx, c, dialect.Settings{LockTimeout: time.Second}, func() error {
			_, err := c.ExecContext(ctx, "ALTER TABLE a ADD COLUMN m int")
			return err
		})
	}
	err := alter()
	var me *gomysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1205 || d.Classify(err) != dialect.LockConflict {
		t.Fatalf("ALTER behind an open transaction = %v; want 1205, a lock conflict", err)
	}
	if _, err := blocker.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	if err := alter(); err != nil {
		t.Fatalf("ALTER once the transaction ended: %v", err)
	}
}

// TestStatementTimeout: MariaDB's max_statement_time stops a statement
// (1969), a Permanent error.
func TestStatementTimeout(t *testing.T) {
	ctx := context.Background()
	c := pin(t, open(t, testdb.MySQL(t)))
	var d mysql.Dialect
	err := d.WithSession(ctx, c, dialect.Settings{StatementTimeout: 100 * time.Millisecond}, func() error {
		_, err := c.ExecContext(ctx, "SELECT SLEEP(60)")
		return err
	})
	var me *gomysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1969 || d.Classify(err) != dialect.Permanent {
		t.Fatalf("SELECT SLEEP(60) under a 100 ms statement timeout = %v; want 1969, permanent", err)
	}
}

// TestObserveAndCancel: Activity names the ALTER a connection runs and,
// while it waits for the metadata lock, the connection whose open
// transaction holds it; CancelBackend stops the ALTER (1317, permanent)
// and leaves its connection usable.
func TestObserveAndCancel(t *testing.T) {
	ctx := context.Background()
	db := open(t, testdb.MySQL(t))
	blocker, c, watcher := pin(t, db), pin(t, db), pin(t, db)
	var d mysql.Dialect
	if _, err := c.ExecContext(ctx, "CREATE TABLE a (n int) ENGINE=InnoDB"); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"START TRANSACTION", "SELECT * FROM a"} {
		if _, err := blocker.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	defer blocker.ExecContext(ctx, "ROLLBACK")
	blockerID, err := d.BackendPID(ctx, blocker)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := d.BackendPID(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if a, err := d.Activity(ctx, watcher, 1<<40); err != nil || a != (dialect.Activity{}) {
		t.Fatalf("Activity of a connection that does not exist = %+v, %v", a, err)
	}
	done := make(chan error, 1)
	go func() {
		done <- d.WithSession(ctx, c, dialect.Settings{LockTimeout: time.Hour}, func() error {
			_, err := c.ExecContext(ctx, "ALTER TABLE a ADD COLUMN m int")
			return err
		})
	}()
	waitRunning(t, watcher, pid, "ALTER TABLE")
	// The ALTER opens the table before it waits for the lock; and
	// INNODB_TRX is a cache that MariaDB refreshes only after 100 ms
	// without readers: poll slower than that.
	a, err := d.Activity(ctx, watcher, pid)
	blockedBy := fmt.Sprintf("connection %d (", blockerID)
	for deadline := time.Now().Add(time.Minute); err == nil && !strings.Contains(a.BlockedBy, blockedBy) && time.Now().Before(deadline); {
		time.Sleep(150 * time.Millisecond)
		a, err = d.Activity(ctx, watcher, pid)
	}
	if err != nil || a.Query != "ALTER TABLE a ADD COLUMN m int" || !strings.Contains(a.BlockedBy, blockedBy) {
		t.Fatalf("Activity = %+v, %v; want the ALTER, blocked by connection %d", a, err, blockerID)
	}
	t.Logf("activity: %+v", a)
	if err := d.CancelBackend(ctx, watcher, pid); err != nil {
		t.Fatal(err)
	}
	err = <-done
	var me *gomysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1317 || d.Classify(err) != dialect.Permanent {
		t.Fatalf("cancelled ALTER = %v; want 1317, permanent", err)
	}
	if b := bounds(t, c); !strings.HasPrefix(b, "86400 ") && !strings.HasPrefix(b, "31536000 ") {
		t.Errorf("bounds after the cancelled statement: %s; want the server's defaults back", b)
	}
	if err := d.CancelBackend(ctx, watcher, 1<<40); err != nil {
		t.Errorf("CancelBackend of a connection that is gone: %v", err)
	}
}

// TestActivityWithoutProcess: a user without the PROCESS privilege (no
// INNODB_TRX) still sees what its own connection runs.
func TestActivityWithoutProcess(t *testing.T) {
	ctx := context.Background()
	url := testdb.MySQL(t)
	admin := open(t, url)
	cfg, err := mysql.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	user := "sl_np_" + fmt.Sprint(time.Now().UnixNano()%1e9)
	for _, q := range []string{
		"CREATE USER '" + user + "'@'%' IDENTIFIED BY 'pw'",
		"GRANT ALL ON `" + cfg.DBName + "`.* TO '" + user + "'@'%'",
	} {
		if _, err := admin.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() { admin.ExecContext(context.Background(), "DROP USER '"+user+"'@'%'") })
	cfg.User, cfg.Passwd = user, "pw"
	db := mysql.Open(cfg)
	defer db.Close()
	c, watcher := pin(t, db), pin(t, db)
	var d mysql.Dialect
	if _, err := watcher.ExecContext(ctx, "SELECT COUNT(*) FROM information_schema.INNODB_TRX"); err == nil {
		t.Fatal("the user reads INNODB_TRX: the test needs one without PROCESS")
	}
	pid, err := d.BackendPID(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := c.ExecContext(ctx, "SELECT SLEEP(600)"); done <- err }()
	waitRunning(t, watcher, pid, "SELECT SLEEP")
	a, err := d.Activity(ctx, watcher, pid)
	if err != nil || a.Query != "SELECT SLEEP(600)" {
		t.Errorf("Activity = %+v, %v; want the SELECT SLEEP", a, err)
	}
	if err := d.CancelBackend(ctx, watcher, pid); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Fatal("the cancelled SLEEP did not fail")
	}
}
