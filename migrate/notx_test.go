package migrate_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/shiplock/shiplock/dialect"
	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/gate"
	"github.com/shiplock/shiplock/internal/testdb"
	"github.com/shiplock/shiplock/migrate"
)

// waitUntil polls q (one integer) until it returns want: waiting for an
// event the database shows, bounded by a generous timeout.
func waitUntil(t testing.TB, db *sql.DB, q string, want int64) {
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
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func notxFile(up string) *fstest.MapFile {
	return &fstest.MapFile{Data: []byte("-- +goose NO TRANSACTION\n-- +goose Up\n" + up + "\n-- +goose Down\nSELECT 1;\n")}
}

// holdWriter opens a transaction that has written to table t and keeps
// it open: a CREATE INDEX CONCURRENTLY on t waits for it ("waiting for
// writers"), as long as the test wants, whatever the table's size.
func holdWriter(t testing.TB, db *sql.DB, table string) *sql.Tx {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("INSERT INTO " + table + " (id) VALUES (-1)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback() })
	return tx
}

// TestStaggeredRunnersWhileIndexBuilds: runners started while another
// builds a concurrent index wait for it instead of calling its marker
// interrupted; status, verify and the gate report it in progress, and no
// INVALID index is called broken while it builds.
func TestStaggeredRunnersWhileIndexBuilds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.Postgres(t)
	files := fstest.MapFS{
		"00001_t.sql":     sqlFile("CREATE TABLE t (id int);\nCREATE TABLE once (n int);\nINSERT INTO t SELECT generate_series(1, 1000);", "DROP TABLE t, once;"),
		"00002_idx.sql":   notxFile("INSERT INTO once VALUES (2);\nCREATE INDEX CONCURRENTLY t_id ON t (id);\nINSERT INTO once VALUES (22);"),
		"00003_after.sql": sqlFile("INSERT INTO once VALUES (3);", "DELETE FROM once WHERE n = 3;"),
	}
	first := pgMigrator(t, url, files, migrate.Options{})
	if _, err := first.Up(ctx, migrate.UpOptions{To: 1}); err != nil {
		t.Fatal(err)
	}
	db := openPG(t, url)
	defer db.Close()
	blocker := holdWriter(t, db, "t")

	errs := make(chan error, 64)
	go func() { _, err := first.Up(ctx, migrate.UpOptions{}); errs <- err }()
	waitUntil(t, db, "SELECT count(*) FROM pg_stat_progress_create_index WHERE relid = 't'::regclass", 1)

	const runners = 30
	var wg sync.WaitGroup
	for range runners {
		m := pgMigrator(t, url, files, migrate.Options{})
		wg.Add(1)
		go func() { defer wg.Done(); _, err := m.Up(ctx, migrate.UpOptions{}); errs <- err }()
	}
	// Every runner is past its first look and waits for the lock.
	waitUntil(t, db, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle' AND query LIKE 'SELECT pg_try_advisory_lock%'", runners)

	reader := pgMigrator(t, url, files, migrate.Options{})
	st, err := reader.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Problems) != 1 || st.Problems[0].Kind != migrate.InProgress || st.Problems[0].Pid == 0 || st.Problems[0].Completed != 1 || st.Problems[0].Total != 3 {
		t.Fatalf("status problems during the build = %+v, want one in-progress marker at statement 2 of 3", st.Problems)
	}
	if s := st.Problems[0].String(); !strings.Contains(s, "in progress") || !strings.Contains(s, "statement 2 of 3") {
		t.Errorf("in-progress problem reads %q", s)
	}
	gs, err := gate.Check(ctx, db, postgres.Dialect{}, 3)
	if err != nil || gs.Ready || len(gs.Interrupted) != 0 || len(gs.InProgress) != 1 || !strings.Contains(gs.Reason, "version 2 in progress") {
		t.Fatalf("gate during the build = %+v, %v; want not ready, in progress, not interrupted", gs, err)
	}

	if err := blocker.Rollback(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for range runners + 1 {
		if err := <-errs; err != nil {
			t.Errorf("a runner failed: %v", err)
		}
	}
	wantVersion(t, reader, 3)
	var rows string
	if err := db.QueryRow("SELECT string_agg(n::text, ',' ORDER BY n) FROM once").Scan(&rows); err != nil || rows != "2,3,22" {
		t.Fatalf("rows = %q, %v; want each once: 2,3,22", rows, err)
	}
}

// deadMarker writes a marker as a runner would have left it when it died
// with statement k in flight: from a session that then ends.
func deadMarker(t testing.TB, url string, mig *migrate.Migration, k int) {
	t.Helper()
	db := openPG(t, url)
	defer db.Close()
	putMarker(t, db, postgres.Dialect{}, mig, k)
}

// putMarker writes, on db, the marker of mig applying with statement k in
// flight.
func putMarker(t testing.TB, db *sql.DB, s dialect.Store, mig *migrate.Migration, k int) {
	t.Helper()
	rec := dialect.Record{Version: mig.Version, Source: mig.Source, Checksum: mig.Checksum, State: dialect.StateApplying,
		Statement: k, InFlight: true, Total: len(mig.Statements(migrate.Up))}
	if err := s.PutRecord(context.Background(), db, rec); err != nil {
		t.Fatal(err)
	}
}

// TestUnconfirmedStatement: a runner died with a statement sent and not
// confirmed. Up settles it from the catalog where PostgreSQL tells, and
// otherwise stops with exit-4 guidance naming the statement; repair
// --skip/--resume settle it; a changed file needs --force.
func TestUnconfirmedStatement(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	files := fstest.MapFS{
		"00001_t.sql": sqlFile("CREATE TABLE t (id int);\nCREATE TABLE items (n int);\nINSERT INTO t VALUES (1), (1);", "DROP TABLE t, items;"),
		"00002_notx.sql": notxFile(`INSERT INTO items VALUES (1);
CREATE INDEX CONCURRENTLY t_id ON t (id);
CREATE TABLE IF NOT EXISTS z (id int);
INSERT INTO items VALUES (2);`),
	}
	count := func(db *sql.DB, q string) int64 {
		var n int64
		if err := db.QueryRow(q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	for _, tc := range []struct {
		name     string
		k        int
		before   string // what the dead runner's statement did
		settled  bool   // up settles it alone
		repair   migrate.RepairAction
		wantRows int64
	}{
		{name: "insert ran", k: 0, before: "INSERT INTO items VALUES (1)", repair: migrate.Skip, wantRows: 2},
		{name: "insert did not run", k: 0, repair: migrate.Resume, wantRows: 2},
		{name: "index built", k: 1, before: "INSERT INTO items VALUES (1); CREATE INDEX t_id ON t (id)", settled: true, wantRows: 2},
		{name: "index left INVALID", k: 1, before: "INSERT INTO items VALUES (1); CREATE UNIQUE INDEX CONCURRENTLY t_id ON t (id)", settled: true, wantRows: 2},
		{name: "index not started", k: 1, before: "INSERT INTO items VALUES (1)", settled: true, wantRows: 2},
		{name: "if not exists", k: 2, before: "INSERT INTO items VALUES (1); CREATE INDEX t_id ON t (id); CREATE TABLE z (id int)", settled: true, wantRows: 2},
		{name: "last insert ran", k: 3, before: "INSERT INTO items VALUES (1); CREATE INDEX t_id ON t (id); CREATE TABLE z (id int); INSERT INTO items VALUES (2)", repair: migrate.Skip, wantRows: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url := testdb.Postgres(t)
			m := pgMigrator(t, url, files, migrate.Options{})
			if _, err := m.Up(ctx, migrate.UpOptions{To: 1}); err != nil {
				t.Fatal(err)
			}
			db := openPG(t, url)
			defer db.Close()
			if tc.before != "" {
				for _, s := range strings.Split(tc.before, "; ") {
					// The failing unique build leaves the INVALID index.
					_, _ = db.Exec(s)
				}
			}
			deadMarker(t, url, m.Migrations()[1], tc.k)
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
				line := 3 + tc.k
				for _, want := range []string{fmt.Sprintf("00002_notx.sql:%d", line), "INSERT INTO items", "shiplock repair --resume", "shiplock repair --skip"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q lacks %q", err, want)
					}
				}
				wantVersion(t, m, 1)
				if _, err := m.Repair(ctx, tc.repair, migrate.RepairOptions{}); err != nil {
					t.Fatalf("Repair: %v", err)
				}
			}
			wantVersion(t, m, 2)
			if n := count(db, "SELECT count(*) FROM items"); n != tc.wantRows {
				t.Errorf("items rows = %d, want %d", n, tc.wantRows)
			}
			if n := count(db, "SELECT count(*) FROM pg_index WHERE indexrelid = 't_id'::regclass AND indisvalid"); n != 1 {
				t.Errorf("t_id valid = %d, want 1", n)
			}
		})
	}

	t.Run("file changed", func(t *testing.T) {
		t.Parallel()
		url := testdb.Postgres(t)
		m := pgMigrator(t, url, files, migrate.Options{})
		if _, err := m.Up(ctx, migrate.UpOptions{To: 1}); err != nil {
			t.Fatal(err)
		}
		deadMarker(t, url, m.Migrations()[1], 0)
		db := openPG(t, url)
		defer db.Close()
		if _, err := db.Exec("UPDATE shiplock_versions SET checksum = 'before' WHERE version_id = 2"); err != nil {
			t.Fatal(err)
		}
		_, err := m.Up(ctx, migrate.UpOptions{})
		var ierr *migrate.IntegrityError
		if !errors.As(err, &ierr) || !ierr.Problems[0].Changed || !strings.Contains(err.Error(), "--force") {
			t.Fatalf("Up = %v, want a changed-file IntegrityError naming --force", err)
		}
		for _, action := range []migrate.RepairAction{migrate.Resume, migrate.Skip, migrate.Restart} {
			if _, err := m.Repair(ctx, action, migrate.RepairOptions{}); !errors.As(err, &ierr) {
				t.Fatalf("Repair %v without --force = %v, want refused", action, err)
			}
		}
		if _, err := m.Repair(ctx, migrate.Resume, migrate.RepairOptions{Force: true}); err != nil {
			t.Fatalf("Repair --force: %v", err)
		}
		wantVersion(t, m, 2)
	})
}

// TestConcurrentIndexIfNotExistsInvalid: CREATE INDEX CONCURRENTLY IF NOT
// EXISTS skips an INVALID index of that name and succeeds; shiplock does
// not record that as done, and the next up drops and builds it.
func TestConcurrentIndexIfNotExistsInvalid(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.Postgres(t)
	files := fstest.MapFS{
		"00001_t.sql":   sqlFile("CREATE TABLE t (id int);\nINSERT INTO t VALUES (1), (1);", "DROP TABLE t;"),
		"00002_idx.sql": notxFile("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t_id ON t (id);"),
	}
	m := pgMigrator(t, url, files, migrate.Options{})
	if _, err := m.Up(ctx, migrate.UpOptions{To: 1}); err != nil {
		t.Fatal(err)
	}
	db := openPG(t, url)
	defer db.Close()
	if _, err := db.Exec("CREATE UNIQUE INDEX CONCURRENTLY t_id ON t (id)"); err == nil {
		t.Fatal("the unique build on duplicates succeeded")
	}
	if _, err := db.Exec("DELETE FROM t WHERE ctid <> (SELECT min(ctid) FROM t)"); err != nil {
		t.Fatal(err)
	}
	_, err := m.Up(ctx, migrate.UpOptions{})
	var merr *migrate.MigrationError
	if !errors.As(err, &merr) || merr.Line != 3 || !strings.Contains(err.Error(), "INVALID") {
		t.Fatalf("Up = %v, want a failure at line 3 naming the INVALID index", err)
	}
	wantVersion(t, m, 1)
	if _, err := m.Up(ctx, migrate.UpOptions{}); err != nil {
		t.Fatalf("second Up: %v", err)
	}
	wantVersion(t, m, 2)
	var valid bool
	if err := db.QueryRow("SELECT indisvalid FROM pg_index WHERE indexrelid = 't_id'::regclass").Scan(&valid); err != nil || !valid {
		t.Fatalf("t_id valid = %v, %v", valid, err)
	}
}

// TestStopLetsStatementFinish: told to stop while a NO TRANSACTION
// statement runs, the run lets it finish, records it, starts nothing more
// and returns ErrStopped; the next run goes on after it.
func TestStopLetsStatementFinish(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.Postgres(t)
	files := fstest.MapFS{
		"00001_t.sql":    sqlFile("CREATE TABLE t (id int);\nCREATE TABLE items (n int);", "DROP TABLE t, items;"),
		"00002_idx.sql":  notxFile("CREATE INDEX CONCURRENTLY t_id ON t (id);\nINSERT INTO items VALUES (1);"),
		"00003_more.sql": sqlFile("INSERT INTO items VALUES (3);", "SELECT 1;"),
	}
	if _, err := pgMigrator(t, url, files, migrate.Options{}).Up(ctx, migrate.UpOptions{To: 1}); err != nil {
		t.Fatal(err)
	}
	db := openPG(t, url)
	defer db.Close()
	blocker := holdWriter(t, db, "t")
	stop := make(chan struct{})
	m := pgMigrator(t, url, files, migrate.Options{Stop: stop})
	errc := make(chan error, 1)
	go func() { _, err := m.Up(ctx, migrate.UpOptions{}); errc <- err }()
	waitUntil(t, db, "SELECT count(*) FROM pg_stat_progress_create_index WHERE relid = 't'::regclass", 1)
	close(stop)
	if err := blocker.Rollback(); err != nil {
		t.Fatal(err)
	}
	err := <-errc
	if !errors.Is(err, migrate.ErrStopped) {
		t.Fatalf("Up told to stop = %v, want ErrStopped", err)
	}
	var statement int
	var inFlight bool
	if err := db.QueryRow("SELECT statement, in_flight FROM shiplock_versions WHERE version_id = 2").Scan(&statement, &inFlight); err != nil || statement != 1 || inFlight {
		t.Fatalf("marker = statement %d, in flight %v, %v; want 1 done, nothing in flight", statement, inFlight, err)
	}
	var items int
	if err := db.QueryRow("SELECT count(*) FROM items").Scan(&items); err != nil || items != 0 {
		t.Fatalf("items = %d, %v: a statement started after the stop", items, err)
	}
	next := pgMigrator(t, url, files, migrate.Options{})
	if _, err := next.Up(ctx, migrate.UpOptions{}); err != nil {
		t.Fatalf("Up after the stop: %v", err)
	}
	wantVersion(t, next, 3)
	var rows string
	if err := db.QueryRow("SELECT string_agg(n::text, ',' ORDER BY n) FROM items").Scan(&rows); err != nil || rows != "1,3" {
		t.Fatalf("items = %q, %v; want 1,3", rows, err)
	}
}

// TestStopWhileWaitingForLock: a run waiting for the lock that is told to
// stop returns ErrStopped at once, without waiting for the holder.
func TestStopWhileWaitingForLock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.Postgres(t)
	files := fstest.MapFS{"00001_t.sql": sqlFile("CREATE TABLE t (id int);", "DROP TABLE t;")}
	holder := openPG(t, url)
	defer holder.Close()
	c, err := holder.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, err := (postgres.Dialect{}).TryLock(ctx, c); err != nil || !ok {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}
	stop := make(chan struct{})
	m := pgMigrator(t, url, files, migrate.Options{Stop: stop})
	errc := make(chan error, 1)
	go func() { _, err := m.Up(ctx, migrate.UpOptions{}); errc <- err }()
	waitUntil(t, holder, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle' AND query LIKE 'SELECT pg_try_advisory_lock%'", 1)
	close(stop)
	if err := <-errc; !errors.Is(err, migrate.ErrStopped) {
		t.Fatalf("Up = %v, want ErrStopped", err)
	}
	wantVersion(t, m, 0)
}

// TestStopGraceRollsBackTransaction: a transactional migration still
// running when the stop grace ends is cancelled and rolled back whole, and
// the run says it stopped (retryable), instead of running on until the
// process is killed.
func TestStopGraceRollsBackTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.Postgres(t)
	files := fstest.MapFS{
		"00001_t.sql": sqlFile("CREATE TABLE t (id int);", "DROP TABLE t;"),
		"00002_a.sql": sqlFile("CREATE TABLE a (id int);\nALTER TABLE t ADD COLUMN x int;", "DROP TABLE a;"),
	}
	if _, err := pgMigrator(t, url, files, migrate.Options{}).Up(ctx, migrate.UpOptions{To: 1}); err != nil {
		t.Fatal(err)
	}
	db := openPG(t, url)
	defer db.Close()
	blocker := holdWriter(t, db, "t")
	stop := make(chan struct{})
	m := pgMigrator(t, url, files, migrate.Options{Stop: stop, StopGrace: 100 * time.Millisecond})
	errc := make(chan error, 1)
	go func() { _, err := m.Up(ctx, migrate.UpOptions{}); errc <- err }()
	waitUntil(t, db, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'ALTER TABLE t%'", 1)
	close(stop)
	var err error
	select {
	case err = <-errc:
	case <-time.After(time.Minute):
		_ = blocker.Rollback()
		t.Fatalf("Up still running a minute after the stop (grace 100ms): %v", <-errc)
	}
	if !errors.Is(err, migrate.ErrStopped) {
		t.Fatalf("Up cancelled by the stop grace = %v, want ErrStopped", err)
	}
	if tableExists(t, db, "a") {
		t.Fatal("table a exists: the cancelled migration was not rolled back whole")
	}
	_ = blocker.Rollback()
	next := pgMigrator(t, url, files, migrate.Options{})
	if _, err := next.Up(ctx, migrate.UpOptions{}); err != nil {
		t.Fatalf("Up after the stop: %v", err)
	}
	wantVersion(t, next, 2)
}

// TestConcurrentIndexIgnoresLockTimeout: a CREATE INDEX CONCURRENTLY waits
// for older transactions however short the DDL lock timeout (its table
// lock blocks no read or write, so nothing queues behind it), instead of
// failing after the timeout while a long transaction runs.
func TestConcurrentIndexIgnoresLockTimeout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.Postgres(t)
	files := fstest.MapFS{
		"00001_t.sql":   sqlFile("CREATE TABLE t (id int);", "DROP TABLE t;"),
		"00002_idx.sql": notxFile("CREATE INDEX CONCURRENTLY t_id ON t (id);"),
	}
	if _, err := pgMigrator(t, url, files, migrate.Options{}).Up(ctx, migrate.UpOptions{To: 1}); err != nil {
		t.Fatal(err)
	}
	db := openPG(t, url)
	defer db.Close()
	blocker := holdWriter(t, db, "t")
	m := pgMigrator(t, url, files, migrate.Options{DDLLockTimeout: 50 * time.Millisecond})
	errc := make(chan error, 1)
	go func() { _, err := m.Up(ctx, migrate.UpOptions{}); errc <- err }()
	// Still waiting well past the lock timeout: under it the build would
	// have failed by now.
	waitUntil(t, db, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX CONCURRENTLY t_id%' AND wait_event_type = 'Lock' AND now() - query_start > interval '500 ms'", 1)
	if err := blocker.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Up: %v", err)
	}
	var lockTimeout string
	if err := db.QueryRow("SELECT count(*)::text FROM pg_index WHERE indexrelid = 't_id'::regclass AND indisvalid").Scan(&lockTimeout); err != nil || lockTimeout != "1" {
		t.Fatalf("t_id valid: %q, %v", lockTimeout, err)
	}
}

// TestConcurrentIndexRetryDropsInvalid: a CREATE INDEX CONCURRENTLY that
// failed on a lock timeout (here the database's own) leaves an INVALID
// index; the retry drops it and builds it again instead of failing with
// "already exists".
func TestConcurrentIndexRetryDropsInvalid(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.Postgres(t)
	files := fstest.MapFS{
		"00001_t.sql":   sqlFile("CREATE TABLE t (id int);", "DROP TABLE t;"),
		"00002_idx.sql": notxFile("CREATE INDEX CONCURRENTLY t_id ON t (id);"),
	}
	if _, err := pgMigrator(t, url, files, migrate.Options{}).Up(ctx, migrate.UpOptions{To: 1}); err != nil {
		t.Fatal(err)
	}
	db := openPG(t, url)
	defer db.Close()
	if _, err := db.Exec("DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET lock_timeout = %L', current_database(), '50ms'); END $$"); err != nil {
		t.Fatal(err)
	}
	blocker := holdWriter(t, db, "t")
	m := pgMigrator(t, url, files, migrate.Options{LockRetries: 8, RetryDelay: 100 * time.Millisecond})
	errc := make(chan error, 1)
	go func() { _, err := m.Up(ctx, migrate.UpOptions{}); errc <- err }()
	// The first attempt failed and left its INVALID index.
	waitUntil(t, db, "SELECT count(*) FROM pg_index WHERE indexrelid = to_regclass('t_id') AND NOT indisvalid AND NOT EXISTS (SELECT FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX CONCURRENTLY t_id%' AND state = 'active')", 1)
	if err := blocker.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Up: %v", err)
	}
	var valid bool
	if err := db.QueryRow("SELECT indisvalid FROM pg_index WHERE indexrelid = 't_id'::regclass").Scan(&valid); err != nil || !valid {
		t.Fatalf("t_id valid = %v, %v", valid, err)
	}
}
