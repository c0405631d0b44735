package migrate_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/shiplock/shiplock/dialect/mysql"
	"github.com/shiplock/shiplock/internal/testdb"
	"github.com/shiplock/shiplock/migrate"
)

// openMy opens a mysql:// URL as shiplock does, closed at the end of the
// test.
func openMy(t testing.TB, url string) *sql.DB {
	t.Helper()
	cfg, err := mysql.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	db := mysql.Open(cfg)
	t.Cleanup(func() { db.Close() })
	return db
}

func myMigrator(t testing.TB, url string, files fstest.MapFS, opts migrate.Options) *migrate.Migrator {
	t.Helper()
	return migrate.New(openMy(t, url), mysql.Dialect{}, load(t, files), opts)
}

// myInt runs a query returning one integer.
func myInt(t testing.TB, db *sql.DB, q string, args ...any) int64 {
	t.Helper()
	var n sql.NullInt64
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n.Int64
}

// waitMy polls q (one integer) until it returns want.
func waitMy(t testing.TB, db *sql.DB, q string, want int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		var n sql.NullInt64
		if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if n.Int64 == want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s = %d, never %d", q, n.Int64, want)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// myExec runs each of stmts on db.
func myExec(t testing.TB, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// firstRetry waits for the engine's first "lock conflict, retrying" log
// record, and returns when it was logged and the error it names.
func firstRetry(t testing.TB, logs *recordLog) (time.Time, error) {
	t.Helper()
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case r := <-logs.ch:
			if r.Message != "lock conflict, retrying" {
				continue
			}
			var cause error
			r.Attrs(func(a slog.Attr) bool {
				if a.Key == "err" {
					cause, _ = a.Value.Any().(error)
				}
				return true
			})
			return r.Time, cause
		case <-timeout:
			t.Fatal("no lock conflict was retried within two minutes")
		}
	}
}

// waitingForMDL counts the other sessions of the database that wait for
// a metadata lock while running a statement starting with prefix.
func waitingForMDL(prefix string) string {
	return fmt.Sprintf(`SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND ID <> CONNECTION_ID()
		AND STATE LIKE 'Waiting for table metadata lock' AND INFO LIKE '%s%%'`, prefix)
}

func myErrno(err error) uint16 {
	var me *gomysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// TestMySQLDDLFileStatementByStatement: MySQL commits around DDL, so a
// file holding DDL runs statement by statement with its progress
// recorded: after a failure half-way, the next up goes on at the failed
// statement (no second row, no "duplicate column"); a data-only file runs
// in one real transaction and leaves nothing when it fails.
func TestMySQLDDLFileStatementByStatement(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.MySQL(t)
	db := openMy(t, url)
	files := fstest.MapFS{
		"00001_ddl.sql":  sqlFile("CREATE TABLE items (n int);\nINSERT INTO items VALUES (1);\nALTER TABLE items ADD COLUMN c int;\nINSERT INTO missing VALUES (1);\nINSERT INTO items (n) VALUES (2);", "DROP TABLE items;"),
		"00002_data.sql": sqlFile("INSERT INTO items (n) VALUES (10);\nINSERT INTO missing2 VALUES (1);", "DELETE FROM items WHERE n = 10;"),
	}
	m := myMigrator(t, url, files, migrate.Options{})
	_, err := m.Up(ctx, migrate.UpOptions{})
	var merr *migrate.MigrationError
	if !errors.As(err, &merr) || merr.File != "00001_ddl.sql" || merr.Line != 5 || merr.OutsideTx != 3 {
		t.Fatalf("first up = %v; want 00001_ddl.sql failing at line 5 after 3 statements", err)
	}
	if n := myInt(t, db, "SELECT COUNT(*) FROM items"); n != 1 {
		t.Fatalf("items rows after the failure = %d, want 1", n)
	}
	if n := myInt(t, db, "SELECT `statement` FROM shiplock_versions WHERE version_id = 1 AND NOT in_flight"); n != 3 {
		t.Fatalf("marker at statement %d, want 3 (not in flight)", n)
	}
	if _, err := db.Exec("CREATE TABLE missing (x int)"); err != nil {
		t.Fatal(err)
	}
	_, err = m.Up(ctx, migrate.UpOptions{})
	if !errors.As(err, &merr) || merr.File != "00002_data.sql" || merr.Line != 3 {
		t.Fatalf("second up = %v; want 00002_data.sql failing at line 3", err)
	}
	if n := myInt(t, db, "SELECT COUNT(*) FROM items"); n != 2 {
		t.Fatalf("items rows = %d, want 2: 00001 resumed at its failed statement, 00002 rolled back", n)
	}
	if n := myInt(t, db, "SELECT COUNT(*) FROM shiplock_versions WHERE version_id = 2"); n != 0 {
		t.Fatalf("a data-only file left %d records after its transaction failed", n)
	}
	wantVersion(t, m, 1)
	if _, err := db.Exec("CREATE TABLE missing2 (x int)"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Up(ctx, migrate.UpOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := myInt(t, db, "SELECT COUNT(*) FROM items"); n != 3 {
		t.Fatalf("items rows = %d, want 3", n)
	}
	if _, err := m.Down(ctx, 0); err != nil {
		t.Fatalf("down: %v", err)
	}
	if tableExists(t, db, "items") {
		t.Fatal("items survived down to 0")
	}
}

// TestMySQLAllModeRefusesImplicitCommit: one transaction around a run
// cannot hold a statement MySQL commits around; the plan is refused before
// anything runs, naming the file and line; a data-only plan runs whole.
func TestMySQLAllModeRefusesImplicitCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.MySQL(t)
	db := openMy(t, url)
	if _, err := db.Exec("CREATE TABLE items (n int)"); err != nil {
		t.Fatal(err)
	}
	files := fstest.MapFS{
		"00001_a.sql": sqlFile("INSERT INTO items VALUES (1);", "DELETE FROM items;"),
		"00002_b.sql": sqlFile("INSERT INTO items VALUES (2);\n-- a comment\nALTER TABLE items ADD COLUMN c int;", "ALTER TABLE items DROP COLUMN c;"),
	}
	_, err := myMigrator(t, url, files, migrate.Options{TxMode: migrate.TxAll}).Up(ctx, migrate.UpOptions{})
	var ierr *migrate.ImplicitCommitError
	if !errors.As(err, &ierr) || ierr.File != "00002_b.sql" || ierr.Line != 4 {
		t.Fatalf("Up in mode all = %v; want an ImplicitCommitError at 00002_b.sql:4", err)
	}
	t.Logf("refused: %v", err)
	if n := myInt(t, db, "SELECT COUNT(*) FROM items"); n != 0 {
		t.Fatalf("%d rows inserted although the run was refused", n)
	}
	m := myMigrator(t, url, files, migrate.Options{TxMode: migrate.TxAll})
	if _, err := m.Up(ctx, migrate.UpOptions{To: 1}); err != nil {
		t.Fatalf("a data-only plan in mode all: %v", err)
	}
	wantVersion(t, m, 1)
}

// TestMySQLDeadlockRetriedWhole: InnoDB rolls back the whole transaction
// of a deadlock victim (1213); the migration's transaction runs again
// from its first statement, so each of its changes lands once.
func TestMySQLDeadlockRetriedWhole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.MySQL(t)
	db := openMy(t, url)
	myExec(t, db, "CREATE TABLE a (id int PRIMARY KEY, v int) ENGINE=InnoDB", "CREATE TABLE b (id int PRIMARY KEY, v int) ENGINE=InnoDB",
		"CREATE TABLE heavy (id int PRIMARY KEY) ENGINE=InnoDB",
		"INSERT INTO a VALUES (1, 0)", "INSERT INTO b VALUES (1, 0)")
	files := fstest.MapFS{"00001_d.sql": sqlFile("UPDATE a SET v = v + 1 WHERE id = 1;\nUPDATE b SET v = v + 1 WHERE id = 1;", "SELECT 1;")}
	logs := &recordLog{ch: make(chan slog.Record, 100)}
	m := myMigrator(t, url, files, migrate.Options{LockRetries: 3, RetryDelay: 10 * time.Millisecond, Logger: slog.New(logs)})

	// The other transaction holds b's row and weighs more (many rows
	// changed), so InnoDB picks the migration as the victim.
	other := openMy(t, url)
	tx, err := other.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec("INSERT INTO heavy SELECT seq FROM seq_1_to_2000"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("UPDATE b SET v = v + 100 WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := m.Up(ctx, migrate.UpOptions{}); done <- err }()
	// The migration has a's row and waits for b's: close the cycle.
	waitMy(t, db, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND STATE = 'Updating' AND INFO LIKE 'UPDATE b SET v = v + 1%'", 1)
	if _, err := tx.Exec("UPDATE a SET v = v + 100 WHERE id = 1"); err != nil {
		t.Fatalf("the other transaction was chosen as the victim (%v); the test needs the migration to be", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Up = %v; want the deadlock retried", err)
	}
	if _, cause := firstRetry(t, logs); myErrno(cause) != 1213 {
		t.Errorf("the retry followed %v; want a 1213 deadlock", cause)
	}
	if a, b := myInt(t, db, "SELECT v FROM a"), myInt(t, db, "SELECT v FROM b"); a != 101 || b != 101 {
		t.Fatalf("a = %d, b = %d; want 101 each (the migration's +1 once, the other's +100)", a, b)
	}
}

// TestMySQLLockWaitRetriedWhole: a lock wait timeout (1205) rolls back
// only the statement and leaves the transaction open with the earlier
// statements' changes; the runner rolls it back and runs it again whole,
// so the first statement's row lands once.
func TestMySQLLockWaitRetriedWhole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.MySQL(t)
	db := openMy(t, url)
	myExec(t, db, "CREATE TABLE log (n int) ENGINE=InnoDB", "CREATE TABLE busy (id int PRIMARY KEY, v int) ENGINE=InnoDB", "INSERT INTO busy VALUES (1, 0)")
	files := fstest.MapFS{"00001_w.sql": sqlFile("INSERT INTO log VALUES (1);\nUPDATE busy SET v = v + 1 WHERE id = 1;", "SELECT 1;")}
	other := openMy(t, url)
	tx, err := other.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec("SELECT * FROM busy WHERE id = 1 FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	// The blocker ends when the first attempt has given up.
	logs := &recordLog{ch: make(chan slog.Record, 100)}
	m := myMigrator(t, url, files, migrate.Options{DDLLockTimeout: time.Second, LockRetries: 5, RetryDelay: 50 * time.Millisecond, Logger: slog.New(logs)})
	done := make(chan error, 1)
	go func() { _, err := m.Up(ctx, migrate.UpOptions{}); done <- err }()
	if _, first := firstRetry(t, logs); myErrno(first) != 1205 {
		t.Fatalf("first attempt failed with %v; want 1205", first)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Up = %v; want the retry to succeed", err)
	}
	if n := myInt(t, db, "SELECT COUNT(*) FROM log"); n != 1 {
		t.Fatalf("log rows = %d, want 1: the transaction of the 1205 was not rolled back before the retry", n)
	}
	if n := myInt(t, db, "SELECT v FROM busy"); n != 1 {
		t.Fatalf("busy.v = %d, want 1", n)
	}
}

// TestMySQLAlterBlockedByOpenTransaction: an ALTER behind an open
// transaction gives up after the DDL lock timeout (1205) instead of
// queueing every later reader behind it for a day (MariaDB's default
// lock_wait_timeout); a reader that queued behind the ALTER goes on once
// it gave up, while the blocker is still open; the ALTER alone is retried
// (the file's INSERT before it is not run again) and succeeds once the
// blocker ends.
func TestMySQLAlterBlockedByOpenTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.MySQL(t)
	db := openMy(t, url)
	myExec(t, db, "CREATE TABLE busy (id int)", "CREATE TABLE log (n int)", "INSERT INTO busy VALUES (1)")
	files := fstest.MapFS{"00001_alter.sql": sqlFile("INSERT INTO log VALUES (1);\nALTER TABLE busy ADD COLUMN c int;", "ALTER TABLE busy DROP COLUMN c;")}
	blocker := openMy(t, url)
	btx, err := blocker.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer btx.Rollback()
	if _, err := btx.Exec("SELECT * FROM busy"); err != nil {
		t.Fatal(err)
	}

	const lockTimeout = time.Second
	logs := &recordLog{ch: make(chan slog.Record, 100)}
	m := myMigrator(t, url, files, migrate.Options{DDLLockTimeout: lockTimeout, LockRetries: 8, RetryDelay: 100 * time.Millisecond, Logger: slog.New(logs)})
	start := time.Now()
	done := make(chan error, 1)
	go func() { _, err := m.Up(ctx, migrate.UpOptions{}); done <- err }()
	waitMy(t, db, waitingForMDL("ALTER TABLE busy"), 1)

	// A reader arrives while the ALTER waits: it queues behind the
	// ALTER's pending exclusive lock. Its statement runs 0.3 s once it
	// has the lock, so it cannot end before the ALTER has given up
	// whatever the scheduling.
	reader := openMy(t, url)
	type read struct {
		at  time.Time
		err error
	}
	readDone := make(chan read, 1)
	go func() {
		var n, s int
		err := reader.QueryRow("SELECT COUNT(*), SLEEP(0.3) FROM busy").Scan(&n, &s)
		readDone <- read{time.Now(), err}
	}()
	waitMy(t, db, waitingForMDL("SELECT COUNT(*), SLEEP"), 1)
	readerQueued := time.Now()

	gaveUp, cause := firstRetry(t, logs)
	if myErrno(cause) != 1205 {
		t.Fatalf("the ALTER gave up with %v; want 1205", cause)
	}
	rd := <-readDone
	if rd.err != nil {
		t.Fatalf("reader: %v", rd.err)
	}
	// The blocker is still open: the reader was held only by the ALTER.
	if !rd.at.After(gaveUp) {
		t.Errorf("the reader completed at %v, before the ALTER gave up at %v", rd.at.Sub(start), gaveUp.Sub(start))
	}
	t.Logf("ALTER gave up %v after the run started (DDL lock timeout %v); the reader, queued at %v, completed at %v (its statement runs 0.3 s), the blocker still open",
		gaveUp.Sub(start).Round(time.Millisecond), lockTimeout, readerQueued.Sub(start).Round(time.Millisecond), rd.at.Sub(start).Round(time.Millisecond))
	if err := btx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Up = %v; want the retried ALTER to succeed once the blocker ended", err)
	}
	t.Logf("retried ALTER succeeded %v after the run started", time.Since(start).Round(time.Millisecond))
	if n := myInt(t, db, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'busy' AND COLUMN_NAME = 'c'"); n != 1 {
		t.Fatal("column c missing after the retry")
	}
	if n := myInt(t, db, "SELECT COUNT(*) FROM log"); n != 1 {
		t.Fatalf("log rows = %d, want 1: the statement before the ALTER ran again", n)
	}
}

// myDeadMarker writes a marker as a runner would have left it when it died
// with statement k in flight: from a session that then ends.
func myDeadMarker(t testing.TB, url string, mig *migrate.Migration, k int) {
	t.Helper()
	db := openMy(t, url)
	defer db.Close()
	putMarker(t, db, mysql.Dialect{}, mig, k)
}

// TestMySQLSettleFromCatalog: a runner died with a DDL statement in
// flight (MariaDB finishes it anyway). up reads its effect in
// information_schema: done goes on after it, not done runs it again; a
// half-done or unreadable statement stops, naming the statement and its
// line; repair settles it.
func TestMySQLSettleFromCatalog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	files := fstest.MapFS{
		"00001_t.sql": sqlFile("CREATE TABLE items (n int);", "DROP TABLE items;"),
		"00002_ddl.sql": sqlFile(`CREATE TABLE t2 (id int);
ALTER TABLE t2 ADD COLUMN c int, ADD INDEX t2_c (c);
INSERT INTO items VALUES (1);
ALTER TABLE t2 MODIFY c bigint;
RENAME TABLE t2 TO t3;`, "DROP TABLE t3;"),
	}
	for _, tc := range []struct {
		name    string
		k       int
		before  []string // what the dead runner's statements did
		settled bool     // up settles it alone
		repair  migrate.RepairAction
	}{
		{name: "create done", k: 0, before: []string{"CREATE TABLE t2 (id int)"}, settled: true},
		{name: "create not done", k: 0, settled: true},
		{name: "alter done", k: 1, before: []string{"CREATE TABLE t2 (id int)", "ALTER TABLE t2 ADD COLUMN c int, ADD INDEX t2_c (c)"}, settled: true},
		{name: "alter not done", k: 1, before: []string{"CREATE TABLE t2 (id int)"}, settled: true},
		{name: "alter half done", k: 1, before: []string{"CREATE TABLE t2 (id int)", "ALTER TABLE t2 ADD COLUMN c int"}, repair: migrate.Skip},
		{name: "modify unreadable", k: 3, before: []string{"CREATE TABLE t2 (id int)", "ALTER TABLE t2 ADD COLUMN c int, ADD INDEX t2_c (c)", "INSERT INTO items VALUES (1)"}, repair: migrate.Resume},
		{name: "rename done", k: 4, before: []string{"CREATE TABLE t2 (id int)", "ALTER TABLE t2 ADD COLUMN c int, ADD INDEX t2_c (c)", "INSERT INTO items VALUES (1)", "RENAME TABLE t2 TO t3"}, settled: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url := testdb.MySQL(t)
			m := myMigrator(t, url, files, migrate.Options{})
			if _, err := m.Up(ctx, migrate.UpOptions{To: 1}); err != nil {
				t.Fatal(err)
			}
			db := openMy(t, url)
			for _, s := range tc.before {
				if _, err := db.Exec(s); err != nil {
					t.Fatal(err)
				}
			}
			myDeadMarker(t, url, m.Migrations()[1], tc.k)
			_, err := m.Up(ctx, migrate.UpOptions{})
			if tc.settled {
				if err != nil {
					t.Fatalf("Up = %v, want the catalog to settle the statement", err)
				}
			} else {
				var ierr *migrate.IntegrityError
				if !errors.As(err, &ierr) || ierr.Problems[0].Kind != migrate.Uncertain {
					t.Fatalf("Up = %v, want an Uncertain IntegrityError", err)
				}
				if want := fmt.Sprintf("00002_ddl.sql:%d", 2+tc.k); !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
				wantVersion(t, m, 1)
				if _, err := m.Repair(ctx, tc.repair, migrate.RepairOptions{}); err != nil {
					t.Fatalf("Repair: %v", err)
				}
			}
			wantVersion(t, m, 2)
			if n := myInt(t, db, "SELECT COUNT(*) FROM items"); n != 1 {
				t.Errorf("items rows = %d, want 1", n)
			}
			if n := myInt(t, db, "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 't3' AND INDEX_NAME = 't2_c'"); n != 1 && tc.repair != migrate.Skip {
				t.Errorf("index t2_c on t3: %d, want 1", n)
			}
		})
	}
}

// TestMySQLSettleDeadClient: the runner's client goes away while its
// ALTER waits for a metadata lock; the server goes on with the ALTER. The
// next up waits for it, reads the outcome in the catalog and goes on
// after it: the ALTER is not run twice and the INSERT after it runs once.
func TestMySQLSettleDeadClient(t *testing.T) {
	t.Parallel()
	url := testdb.MySQL(t)
	db := openMy(t, url)
	myExec(t, db, "CREATE TABLE busy (id int)", "CREATE TABLE log (n int)")
	files := fstest.MapFS{"00001_alter.sql": sqlFile("ALTER TABLE busy ADD COLUMN c int;\nINSERT INTO log VALUES (1);", "ALTER TABLE busy DROP COLUMN c;")}
	blocker := openMy(t, url)
	btx, err := blocker.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer btx.Rollback()
	if _, err := btx.Exec("SELECT * FROM busy"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := myMigrator(t, url, files, migrate.Options{}).Up(ctx, migrate.UpOptions{})
		done <- err
	}()
	waitMy(t, db, waitingForMDL("ALTER TABLE busy"), 1)
	// The driver closes the connection on cancel: the client is gone,
	// the server's ALTER still waits.
	cancel()
	t.Logf("first run: %v", <-done)
	if n := myInt(t, db, "SELECT COUNT(*) FROM shiplock_versions WHERE in_flight"); n != 1 {
		t.Fatalf("%d markers in flight, want 1", n)
	}
	alive := myInt(t, db, waitingForMDL("ALTER TABLE busy"))
	if err := btx.Commit(); err != nil {
		t.Fatal(err)
	}
	m := myMigrator(t, url, files, migrate.Options{})
	if _, err := m.Up(context.Background(), migrate.UpOptions{}); err != nil {
		t.Fatalf("rerun: %v", err)
	}
	t.Logf("the dead client's ALTER was still waiting on the server after the cancel: %v", alive == 1)
	wantVersion(t, m, 1)
	if n := myInt(t, db, "SELECT COUNT(*) FROM log"); n != 1 {
		t.Fatalf("log rows = %d, want 1", n)
	}
}

// TestMySQLRunnersRace: 32 runners at once on a set of data-only
// migrations, 20 times: each migration applied once, no runner fails.
func TestMySQLRunnersRace(t *testing.T) {
	t.Parallel()
	const (
		runners = 32
		trials  = 20
		n       = 10
	)
	files := fstest.MapFS{"00001_t.sql": sqlFile("CREATE TABLE t (n int NOT NULL);", "DROP TABLE t;")}
	for i := 2; i <= n; i++ {
		files[fmt.Sprintf("%05d_d.sql", i)] = sqlFile(fmt.Sprintf("INSERT INTO t VALUES (%d);", i), fmt.Sprintf("DELETE FROM t WHERE n = %d;", i))
	}
	migs := load(t, files)
	failures, duplicates := 0, 0
	for trial := range trials {
		url := testdb.MySQL(t)
		cfg, err := mysql.ParseURL(url)
		if err != nil {
			t.Fatal(err)
		}
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			start = make(chan struct{})
		)
		for range runners {
			db := mysql.Open(cfg)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer db.Close()
				<-start
				if _, err := migrate.New(db, mysql.Dialect{}, migs, migrate.Options{}).Up(context.Background(), migrate.UpOptions{}); err != nil {
					mu.Lock()
					failures++
					t.Errorf("trial %d: %v", trial, err)
					mu.Unlock()
				}
			}()
		}
		close(start)
		wg.Wait()
		db := openMy(t, url)
		rows, distinct := myInt(t, db, "SELECT COUNT(*) FROM t"), myInt(t, db, "SELECT COUNT(DISTINCT n) FROM t")
		versions, distinctVersions := myInt(t, db, "SELECT COUNT(*) FROM goose_db_version"), myInt(t, db, "SELECT COUNT(DISTINCT version_id) FROM goose_db_version")
		duplicates += int(rows-distinct) + int(versions-distinctVersions)
		if distinct != n-1 || distinctVersions != n+1 {
			t.Errorf("trial %d: %d distinct rows, %d distinct versions; want %d, %d", trial, distinct, distinctVersions, n-1, n+1)
		}
		db.Close()
	}
	t.Logf("%d runners at once, %d trials: %d duplicates, %d failures", runners, trials, duplicates, failures)
	if duplicates != 0 || failures != 0 {
		t.Errorf("want 0 duplicates, 0 failures")
	}
}

// TestMySQLTemporaryTableDataFile: CREATE/DROP TEMPORARY TABLE do not
// commit, so a data file staging rows in a temporary table gets a real
// transaction: its failure keeps nothing, and the rerun runs it whole (run
// statement by statement, the resumed statement would find the
// temporary table gone with its session). A rollback does not drop a
// temporary table, and the rerun here is on the same session as a retry
// would be: the file drops it IF EXISTS first, as the README advises.
func TestMySQLTemporaryTableDataFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.MySQL(t)
	db := openMy(t, url)
	myExec(t, db, "CREATE TABLE target (id int PRIMARY KEY)", "INSERT INTO target VALUES (1)")
	files := fstest.MapFS{
		"00001_stage.sql": sqlFile("DROP TEMPORARY TABLE IF EXISTS staged;\nCREATE TEMPORARY TABLE staged (id int);\nINSERT INTO staged VALUES (1), (2);\nINSERT INTO target SELECT id FROM staged;\nDROP TEMPORARY TABLE staged;", "DELETE FROM target WHERE id IN (1, 2);"),
	}
	m := myMigrator(t, url, files, migrate.Options{})
	_, err := m.Up(ctx, migrate.UpOptions{})
	var merr *migrate.MigrationError
	if !errors.As(err, &merr) || merr.Line != 5 || merr.OutsideTx != 0 {
		t.Fatalf("first up = %v; want a failure at line 5 inside the file's transaction", err)
	}
	if n := myInt(t, db, "SELECT COUNT(*) FROM shiplock_versions WHERE version_id = 1"); n != 0 {
		t.Fatalf("the data file left %d records after its transaction failed", n)
	}
	myExec(t, db, "DELETE FROM target")
	if _, err := m.Up(ctx, migrate.UpOptions{}); err != nil {
		t.Fatalf("rerun: %v", err)
	}
	if n := myInt(t, db, "SELECT COUNT(*) FROM target"); n != 2 {
		t.Fatalf("target rows = %d, want 2", n)
	}
	wantVersion(t, m, 1)
}

// TestMySQLRecordFailureCountsOutsideStatements: when a progress record
// cannot be written (here the file drops shiplock_versions itself), the
// statements that already committed are counted in the error, so the
// caller never reports "nothing changed".
func TestMySQLRecordFailureCountsOutsideStatements(t *testing.T) {
	t.Parallel()
	url := testdb.MySQL(t)
	files := fstest.MapFS{
		"00001_hostile.sql": sqlFile("CREATE TABLE a (id int);\nDROP TABLE shiplock_versions;\nCREATE TABLE b (id int);", "DROP TABLE a;"),
	}
	m := myMigrator(t, url, files, migrate.Options{})
	_, err := m.Up(context.Background(), migrate.UpOptions{})
	var merr *migrate.MigrationError
	if !errors.As(err, &merr) || merr.OutsideTx != 2 {
		t.Fatalf("up = %v (%+v); want a MigrationError counting the 2 statements that committed", err, merr)
	}
}
