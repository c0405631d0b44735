package migrate_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/shiplock/shiplock/dialect"
	"github.com/shiplock/shiplock/dialect/mysql"
	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/internal/testdb"
	"github.com/shiplock/shiplock/migrate"
)

// killWriteCase is a file run statement by statement whose statements
// each leave a mark that can be counted: INSERT INTO log VALUES ('sI')
// (rows) or CREATE TABLE tI (existence).
type killWriteCase struct {
	name  string
	my    bool
	file  string // the Up section of 00002
	notx  bool
	stmts []string // "s<I>" for an insert, "t<I>" for a table, "" for none
}

// TestKillAtEveryProgressWrite dies (every write to shiplock_versions
// from the N-th on fails, as after a crash: a trigger counts them with a
// sequence, which no rollback takes back) at each progress write of a
// file run statement by statement, for every N until the run gets
// through. Each time the marker left must agree with what ran (no marker:
// nothing; statement S done: exactly the ones before S; S in flight: the
// ones before S, S maybe), and the next up (with repair where the marker
// is uncertain) must end with every statement run exactly once.
func TestKillAtEveryProgressWrite(t *testing.T) {
	cases := []killWriteCase{
		{name: "pg no transaction", notx: true,
			file:  "INSERT INTO log VALUES ('s0');\nCREATE TABLE t1 (id int);\nINSERT INTO log VALUES ('s2');\nINSERT INTO log VALUES ('s3');",
			stmts: []string{"s0", "t1", "s2", "s3"}},
		{name: "pg own transaction",
			file:  "INSERT INTO log VALUES ('s0');\nCOMMIT;\nINSERT INTO log VALUES ('s2');\nBEGIN;\nINSERT INTO log VALUES ('s4');\nCOMMIT;\nINSERT INTO log VALUES ('s6');",
			stmts: []string{"s0", "", "s2", "", "s4", "", "s6"}},
		{name: "pg own transaction first", notx: false,
			file:  "BEGIN;\nINSERT INTO log VALUES ('s1');\nCOMMIT;\nCREATE TABLE t3 (id int);",
			stmts: []string{"", "s1", "", "t3"}},
		{name: "mysql ddl file", my: true,
			file:  "CREATE TABLE t0 (id int);\nINSERT INTO log VALUES ('s1');\nCREATE TABLE t2 (id int);\nINSERT INTO log VALUES ('s3');\nINSERT INTO log VALUES ('s4');\nCREATE TABLE t5 (id int);",
			stmts: []string{"t0", "s1", "t2", "s3", "s4", "t5"}},
		{name: "mysql data first", my: true,
			file:  "INSERT INTO log VALUES ('s0');\nCREATE TABLE t1 (id int);\nINSERT INTO log VALUES ('s2');",
			stmts: []string{"s0", "t1", "s2"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for n := 1; ; n++ {
				if done := killWriteOnce(t, tc, n); done {
					t.Logf("%s: %d kill points", tc.name, n-1)
					return
				}
				if n > 100 {
					t.Fatal("never got through")
				}
			}
		})
	}
}

// killWriteOnce runs tc with every write from the n-th on failing, checks
// the marker, then runs up again without the failure; it reports whether
// the first run got through.
func killWriteOnce(t *testing.T, tc killWriteCase, n int) bool {
	ctx := context.Background()
	head := "-- +goose Up\n"
	if tc.notx {
		head = "-- +goose NO TRANSACTION\n" + head
	}
	files := fstest.MapFS{
		"00001_log.sql": sqlFile("CREATE TABLE log (tag varchar(10));", "DROP TABLE log;"),
		"00002_m.sql":   &fstest.MapFile{Data: []byte(head + tc.file + "\n-- +goose Down\nSELECT 1;\n")},
	}
	var (
		url  string
		open func() *sql.DB
		d    dialect.Dialect
	)
	if tc.my {
		url, d = testdb.MySQL(t), mysql.Dialect{}
		open = func() *sql.DB {
			cfg, err := mysql.ParseURL(url)
			if err != nil {
				t.Fatal(err)
			}
			return mysql.Open(cfg)
		}
	} else {
		url, d = testdb.Postgres(t), postgres.Dialect{}
		open = func() *sql.DB { return openPG(t, url) }
	}
	newM := func(db *sql.DB) *migrate.Migrator { return migrate.New(db, d, load(t, files), migrate.Options{}) }
	db := open()
	defer db.Close()
	exec := func(q string) {
		t.Helper()
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := newM(db).Up(ctx, migrate.UpOptions{To: 1}); err != nil {
		t.Fatal(err)
	}
	exec("CREATE TABLE kill_at (n int)")
	exec(fmt.Sprintf("INSERT INTO kill_at VALUES (%d)", n))
	exec("CREATE SEQUENCE kill_seq")
	if tc.my {
		for _, ev := range []string{"INSERT", "UPDATE", "DELETE"} {
			exec(fmt.Sprintf("CREATE TRIGGER kill_%s BEFORE %s ON shiplock_versions FOR EACH ROW BEGIN IF NEXTVAL(kill_seq) >= (SELECT n FROM kill_at) THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'killed'; END IF; END", strings.ToLower(ev), ev))
		}
	} else {
		exec(`CREATE FUNCTION kill_fn() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF nextval('kill_seq') >= (SELECT n FROM kill_at) THEN RAISE EXCEPTION 'killed'; END IF;
	RETURN COALESCE(NEW, OLD);
END $$`)
		exec("CREATE TRIGGER kill_t BEFORE INSERT OR UPDATE OR DELETE ON shiplock_versions FOR EACH ROW EXECUTE FUNCTION kill_fn()")
	}
	run := open()
	_, err := newM(run).Up(ctx, migrate.UpOptions{})
	run.Close()
	exec("UPDATE kill_at SET n = 1000000")
	count := func(i int) int64 {
		mark := tc.stmts[i]
		var q string
		switch {
		case mark == "":
			return -1
		case mark[0] == 's':
			q = fmt.Sprintf("SELECT count(*) FROM log WHERE tag = '%s'", mark)
		case tc.my:
			q = fmt.Sprintf("SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = '%s'", mark)
		default:
			q = fmt.Sprintf("SELECT count(*) FROM pg_tables WHERE tablename = '%s'", mark)
		}
		var c int64
		if err := db.QueryRow(q).Scan(&c); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return c
	}
	var applied int64
	if err := db.QueryRow("SELECT count(*) FROM goose_db_version WHERE version_id = 2").Scan(&applied); err != nil {
		t.Fatal(err)
	}
	var (
		stmt     sql.NullInt64
		inFlight sql.NullBool
	)
	col := "statement"
	if tc.my {
		col = "`statement`"
	}
	err2 := db.QueryRow("SELECT "+col+", in_flight FROM shiplock_versions WHERE version_id = 2 AND state <> 'applied'").Scan(&stmt, &inFlight)
	if err2 != nil && !errors.Is(err2, sql.ErrNoRows) {
		t.Fatal(err2)
	}
	marker := "none"
	if err2 == nil {
		marker = fmt.Sprintf("%d in flight %v", stmt.Int64, inFlight.Bool)
	}
	ran := make([]int64, len(tc.stmts))
	for i := range tc.stmts {
		ran[i] = count(i)
	}
	t.Logf("kill at write %d: err %v; applied %d, marker %s, ran %v", n, err, applied, marker, ran)
	if err == nil {
		if applied != 1 || marker != "none" {
			t.Fatalf("write %d: run got through but applied %d, marker %s", n, applied, marker)
		}
	}
	// What the marker says must agree with what ran.
	for i, c := range ran {
		if c < 0 {
			continue
		}
		var want string
		switch {
		case applied == 1:
			want = "1"
		case err2 != nil:
			want = "0"
		case int64(i) < stmt.Int64:
			want = "1"
		case int64(i) == stmt.Int64 && inFlight.Bool:
			want = "01"
		default:
			want = "0"
		}
		if !strings.Contains(want, fmt.Sprint(c)) {
			t.Errorf("write %d: statement %d ran %d times, marker %s, applied %d", n, i, c, marker, applied)
		}
	}
	if err == nil {
		return true
	}
	// The next up, settled by the operator where the marker is uncertain.
	m := newM(db)
	_, uerr := m.Up(ctx, migrate.UpOptions{})
	var ierr *migrate.IntegrityError
	if errors.As(uerr, &ierr) && len(ierr.Problems) == 1 && ierr.Problems[0].Kind == migrate.Uncertain {
		action := migrate.Resume
		if c := count(int(stmt.Int64)); c > 0 {
			action = migrate.Skip
		}
		t.Logf("write %d: uncertain statement %d, repair %v", n, stmt.Int64, action)
		if _, err := m.Repair(ctx, action, migrate.RepairOptions{}); err != nil {
			t.Fatalf("write %d: repair: %v", n, err)
		}
	} else if uerr != nil {
		t.Fatalf("write %d: second up: %v", n, uerr)
	}
	for i := range tc.stmts {
		if c := count(i); c >= 0 && c != 1 {
			t.Errorf("write %d: after the second up statement %d ran %d times", n, i, c)
		}
	}
	return false
}

// TestStopBetweenStatementsRecords: told to stop while a statement run
// statement by statement waits for a lock the test holds, the run lets
// it finish and stops before the next: the marker says what completed
// (the statement's "done" record, deferred, is written at the stop), and
// the next up runs each statement exactly once. Inside a file's own
// transaction block nothing of the block stays.
func TestStopBetweenStatementsRecords(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		file *fstest.MapFile
		want int    // the marker's statements done, -1 for none
		kept string // the rows after the stop
	}{
		{"pg after the file's commit", sqlFile("INSERT INTO log VALUES ('s0');\nCOMMIT;\nSELECT pg_advisory_xact_lock(7);\nINSERT INTO log VALUES ('s3');", "SELECT 1;"), 3, "s0"},
		{"pg inside the file's block", sqlFile("INSERT INTO log VALUES ('s0');\nSELECT pg_advisory_xact_lock(7);\nINSERT INTO log VALUES ('s2');\nCOMMIT;\nINSERT INTO log VALUES ('s4');", "SELECT 1;"), -1, ""},
		{"pg no transaction", notxFile("INSERT INTO log VALUES ('s0');\nSELECT pg_advisory_xact_lock(7);\nINSERT INTO log VALUES ('s2');"), 2, "s0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			files := fstest.MapFS{"00001_log.sql": sqlFile("CREATE TABLE log (tag text);", "DROP TABLE log;"), "00002_m.sql": tc.file}
			stopPG(ctx, t, testdb.Postgres(t), files, tc.want, tc.kept)
		})
	}
	t.Run("mysql ddl before a data statement", func(t *testing.T) {
		t.Parallel()
		url := testdb.MySQL(t)
		files := fstest.MapFS{
			"00001_log.sql": sqlFile("CREATE TABLE log (tag varchar(10));\nCREATE TABLE x (id int);", "DROP TABLE log, x;"),
			"00002_m.sql":   sqlFile("INSERT INTO log VALUES ('s0');\nALTER TABLE x ADD COLUMN c int;\nINSERT INTO log VALUES ('s2');\nCREATE TABLE t3 (id int);", "SELECT 1;"),
		}
		if _, err := myMigrator(t, url, files, migrate.Options{}).Up(ctx, migrate.UpOptions{To: 1}); err != nil {
			t.Fatal(err)
		}
		db := openMy(t, url)
		blocker, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := blocker.Exec("SELECT * FROM x"); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		errc := make(chan error, 1)
		m := myMigrator(t, url, files, migrate.Options{Stop: stop})
		go func() { _, err := m.Up(ctx, migrate.UpOptions{}); errc <- err }()
		waitMy(t, db, waitingForMDL("ALTER TABLE x"), 1)
		close(stop)
		if err := blocker.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; !errors.Is(err, migrate.ErrStopped) {
			t.Fatalf("up told to stop = %v, want ErrStopped", err)
		}
		if n, f := myInt(t, db, "SELECT `statement` FROM shiplock_versions WHERE version_id = 2"), myInt(t, db, "SELECT in_flight FROM shiplock_versions WHERE version_id = 2"); n != 2 || f != 0 {
			t.Fatalf("marker = statement %d, in flight %d; want 2 done, nothing in flight", n, f)
		}
		if n := myInt(t, db, "SELECT COUNT(*) FROM log"); n != 1 {
			t.Fatalf("log has %d rows after the stop, want 1", n)
		}
		if _, err := myMigrator(t, url, files, migrate.Options{}).Up(ctx, migrate.UpOptions{}); err != nil {
			t.Fatalf("up after the stop: %v", err)
		}
		if n := myInt(t, db, "SELECT COUNT(*) FROM log"); n != 2 {
			t.Fatalf("log has %d rows, want 2", n)
		}
	})
}

// stopPG runs files' version 2 with Stop closed while its
// pg_advisory_xact_lock(7) statement waits for the test's lock, and wants
// the marker at want done (-1: none) and the rows of kept after the stop,
// then every insert once after the next up.
func stopPG(ctx context.Context, t *testing.T, url string, files fstest.MapFS, want int, kept string) {
	t.Helper()
	if _, err := pgMigrator(t, url, files, migrate.Options{}).Up(ctx, migrate.UpOptions{To: 1}); err != nil {
		t.Fatal(err)
	}
	db := openPG(t, url)
	defer db.Close()
	holder, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if _, err := holder.ExecContext(ctx, "SELECT pg_advisory_lock(7)"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	errc := make(chan error, 1)
	m := pgMigrator(t, url, files, migrate.Options{Stop: stop})
	go func() { _, err := m.Up(ctx, migrate.UpOptions{}); errc <- err }()
	waitUntil(t, db, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 7 AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())", 1)
	close(stop)
	if _, err := holder.ExecContext(ctx, "SELECT pg_advisory_unlock(7)"); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, migrate.ErrStopped) {
		t.Fatalf("up told to stop = %v, want ErrStopped", err)
	} else {
		t.Logf("up told to stop: %v", err)
	}
	var (
		n        int
		inFlight bool
	)
	err = db.QueryRow("SELECT statement, in_flight FROM shiplock_versions WHERE version_id = 2").Scan(&n, &inFlight)
	switch {
	case want < 0 && !errors.Is(err, sql.ErrNoRows):
		t.Fatalf("marker = %d, in flight %v, %v; want none", n, inFlight, err)
	case want >= 0 && (err != nil || n != want || inFlight):
		t.Fatalf("marker = %d, in flight %v, %v; want %d done, nothing in flight", n, inFlight, err, want)
	}
	var rows string
	if err := db.QueryRow("SELECT coalesce(string_agg(tag, ',' ORDER BY tag), '') FROM log").Scan(&rows); err != nil || rows != kept {
		t.Fatalf("rows after the stop = %q, %v; want %q", rows, err, kept)
	}
	if _, err := pgMigrator(t, url, files, migrate.Options{}).Up(ctx, migrate.UpOptions{}); err != nil {
		t.Fatalf("up after the stop: %v", err)
	}
	if err := db.QueryRow("SELECT count(*) - count(DISTINCT tag) FROM log").Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d inserts ran twice, %v", n, err)
	}
}

// TestFailedStatementThenRerun: statement 2 of a file run statement by
// statement fails (its table is missing): the marker says 2 done, nothing
// in flight, and once the table exists the next up goes on at statement
// 2, running each statement once.
func TestFailedStatementThenRerun(t *testing.T) {
	ctx := context.Background()
	const body = "INSERT INTO log VALUES ('s0');\nINSERT INTO log VALUES ('s1');\nINSERT INTO later VALUES ('s2');\nINSERT INTO log VALUES ('s3');"
	for _, tc := range []struct {
		name string
		my   bool
		file *fstest.MapFile
		opts migrate.Options
	}{
		{name: "pg no transaction", file: notxFile(body)},
		{name: "pg tx-mode none", file: sqlFile(body, "SELECT 1;"), opts: migrate.Options{TxMode: migrate.TxNone}},
		{name: "mysql ddl file", my: true, file: sqlFile("CREATE TABLE t0 (id int);\nINSERT INTO log VALUES ('s1');\nINSERT INTO later VALUES ('s2');\nCREATE TABLE t3 (id int);", "SELECT 1;")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			files := fstest.MapFS{"00001_log.sql": sqlFile("CREATE TABLE log (tag varchar(10));", "DROP TABLE log;"), "00002_m.sql": tc.file}
			var (
				db  *sql.DB
				m   func() *migrate.Migrator
				col = "statement"
			)
			if tc.my {
				url := testdb.MySQL(t)
				db, col = openMy(t, url), "`statement`"
				m = func() *migrate.Migrator { return myMigrator(t, url, files, tc.opts) }
			} else {
				url := testdb.Postgres(t)
				db = openPG(t, url)
				defer db.Close()
				m = func() *migrate.Migrator { return pgMigrator(t, url, files, tc.opts) }
			}
			if _, err := m().Up(ctx, migrate.UpOptions{}); err == nil {
				t.Fatal("up with the table missing succeeded")
			}
			var (
				n        int
				inFlight bool
			)
			if err := db.QueryRow("SELECT "+col+", in_flight FROM shiplock_versions WHERE version_id = 2").Scan(&n, &inFlight); err != nil || n != 2 || inFlight {
				t.Fatalf("marker = %d, in flight %v, %v; want 2 done, nothing in flight", n, inFlight, err)
			}
			if _, err := db.Exec("CREATE TABLE later (tag varchar(10))"); err != nil {
				t.Fatal(err)
			}
			if _, err := m().Up(ctx, migrate.UpOptions{}); err != nil {
				t.Fatalf("up once the table exists: %v", err)
			}
			var rows, later int
			if err := db.QueryRow("SELECT (SELECT count(*) FROM log), (SELECT count(*) FROM later)").Scan(&rows, &later); err != nil || later != 1 || (rows != 3 && !tc.my) || (rows != 1 && tc.my) {
				t.Fatalf("log %d rows, later %d, %v", rows, later, err)
			}
		})
	}
}
