package migrate_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/shiplock/shiplock/dialect"
	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/internal/testdb"
	"github.com/shiplock/shiplock/migrate"
)

func pgMigrator(t testing.TB, url string, files fstest.MapFS, opts migrate.Options) *migrate.Migrator {
	t.Helper()
	db := openPG(t, url)
	t.Cleanup(func() { db.Close() })
	return migrate.New(db, postgres.Dialect{}, load(t, files), opts)
}

// TestDDLLockTimeout holds a conflicting lock in a live transaction: the
// migration gives up after its lock timeout and retries instead of queueing
// everyone behind it, fails cleanly when the blocker stays, and succeeds
// once the blocker commits.
func TestDDLLockTimeout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.Postgres(t)
	base := fstest.MapFS{"00001_t.sql": sqlFile("CREATE TABLE accounts (id int);", "DROP TABLE accounts;")}
	if _, err := pgMigrator(t, url, base, migrate.Options{}).Up(ctx, migrate.UpOptions{}); err != nil {
		t.Fatal(err)
	}
	files := fstest.MapFS{
		"00001_t.sql":     base["00001_t.sql"],
		"00002_email.sql": sqlFile("ALTER TABLE accounts ADD COLUMN email text;", "ALTER TABLE accounts DROP COLUMN email;"),
	}

	// A live transaction reading the table: ALTER TABLE needs an exclusive lock.
	blocker := openPG(t, url)
	defer blocker.Close()
	tx, err := blocker.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("SELECT * FROM accounts"); err != nil {
		t.Fatal(err)
	}

	opts := migrate.Options{DDLLockTimeout: 100 * time.Millisecond, LockRetries: 2, RetryDelay: 50 * time.Millisecond}
	m := pgMigrator(t, url, files, opts)
	_, err = m.Up(ctx, migrate.UpOptions{})
	var merr *migrate.MigrationError
	if !errors.As(err, &merr) || merr.Version != 2 || (postgres.Dialect{}).Classify(err) != dialect.LockConflict {
		t.Fatalf("Up with a blocker = %v, want a lock-timeout MigrationError for version 2", err)
	}
	wantVersion(t, m, 1)

	// With enough retries, the run outlasts the blocker.
	done := make(chan error, 1)
	go func() {
		_, err := pgMigrator(t, url, files, migrate.Options{DDLLockTimeout: 100 * time.Millisecond, LockRetries: 20, RetryDelay: 50 * time.Millisecond}).Up(ctx, migrate.UpOptions{})
		done <- err
	}()
	// Commit once the runner's ALTER is seen queued behind the blocker.
	waitForQuery(t, blocker, "ALTER TABLE accounts ADD COLUMN email", "wait_event_type = 'Lock'")
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Up after the blocker committed: %v", err)
	}
	wantVersion(t, m, 2)
}

// TestTimeoutsScopedToMigration: shiplock's lock_timeout must not leak into
// the session, while a migration's own SET carries over (goose behaviour).
func TestTimeoutsScopedToMigration(t *testing.T) {
	t.Parallel()
	url := testdb.Postgres(t)
	files := fstest.MapFS{
		"00001_a.sql": sqlFile("SET statement_timeout = '123s';\nCREATE TABLE a (id int);", "DROP TABLE a;"),
		"00002_b.sql": {Data: []byte("-- +goose Up\nCREATE TABLE seen AS SELECT current_setting('lock_timeout') AS lock, current_setting('statement_timeout') AS stmt;\n")},
		"00003_c.sql": {Data: []byte("-- +goose NO TRANSACTION\n-- +goose Up\nCREATE TABLE seen_notx AS SELECT current_setting('lock_timeout') AS lock;\nINSERT INTO seen_notx SELECT current_setting('lock_timeout');\n")},
		"00004_d.sql": {Data: []byte("-- +goose Up\nCREATE TABLE after_notx AS SELECT current_setting('lock_timeout') AS lock;\n")},
	}
	m := pgMigrator(t, url, files, migrate.Options{DDLLockTimeout: 4 * time.Second})
	if _, err := m.Up(context.Background(), migrate.UpOptions{}); err != nil {
		t.Fatal(err)
	}
	db := openPG(t, url)
	defer db.Close()
	var lock, stmt string
	if err := db.QueryRow("SELECT lock, stmt FROM seen").Scan(&lock, &stmt); err != nil {
		t.Fatal(err)
	}
	if lock != "4s" || stmt != "2min 3s" && stmt != "123s" {
		t.Errorf("inside migration 2: lock_timeout %q (want 4s), statement_timeout %q (want the 123s set by migration 1)", lock, stmt)
	}
	var notx string
	if err := db.QueryRow("SELECT min(lock) FROM seen_notx").Scan(&notx); err != nil || notx != "4s" {
		t.Errorf("inside the NO TRANSACTION migration: lock_timeout %q, %v; want 4s", notx, err)
	}
	var after string
	if err := db.QueryRow("SELECT lock FROM after_notx").Scan(&after); err != nil || after != "4s" {
		t.Errorf("after it (SET LOCAL again): %q, %v", after, err)
	}
}

// TestInterruptedNoTransaction: a NO TRANSACTION migration that stops
// half-way leaves a marker; up resumes it at the statement that failed
// (not from the start), down refuses with the file, statement and line.
func TestInterruptedNoTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.Postgres(t)
	files := fstest.MapFS{
		"00001_a.sql": sqlFile("CREATE TABLE a (id int);", "DROP TABLE a;"),
		"00002_idx.sql": {Data: []byte(`-- +goose NO TRANSACTION
-- +goose Up
CREATE TABLE b (id int);
INSERT INTO needed (id) VALUES (1);
CREATE INDEX CONCURRENTLY b_id ON b (id);
-- +goose Down
DROP TABLE b;
`)},
	}
	m := pgMigrator(t, url, files, migrate.Options{})
	_, err := m.Up(ctx, migrate.UpOptions{})
	var merr *migrate.MigrationError
	if !errors.As(err, &merr) || merr.Version != 2 || merr.Line != 4 {
		t.Fatalf("Up = %v, want a failure of version 2 at line 4", err)
	}
	// Up again resumes at line 4: statement 1 (line 3) would fail with
	// "already exists".
	if _, err := m.Up(ctx, migrate.UpOptions{}); !errors.As(err, &merr) || merr.Line != 4 {
		t.Fatalf("second Up = %v, want the same failure at line 4", err)
	}
	_, err = m.Down(ctx, -1)
	var ierr *migrate.IntegrityError
	if !errors.As(err, &ierr) || ierr.Problems[0].Kind != migrate.Interrupted {
		t.Fatalf("Down after the interruption = %v, want an interrupted IntegrityError", err)
	}
	p := ierr.Problems[0]
	if p.Version != 2 || p.Completed != 1 || p.Total != 3 || p.Line != 4 || p.InFlight {
		t.Fatalf("problem = %+v, want version 2, 1 of 3 done, next at line 4, nothing in flight", p)
	}
	// The facts a caller words its advice from: the run's direction
	// resumes it (the CLI says "shiplock up resumes it").
	if p.Direction != migrate.Up || p.File != "00002_idx.sql" || p.Changed {
		t.Errorf("problem = %+v, want an up of 00002_idx.sql, file unchanged", p)
	}
	st, err := m.Status(ctx)
	if err != nil || len(st.Problems) == 0 || st.Problems[0].Kind != migrate.Interrupted {
		t.Fatalf("Status = %+v, %v; want the interruption reported", st, err)
	}

	// The operator fixes the cause; a plain up runs statements 2 and 3.
	db := openPG(t, url)
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE needed (id int)"); err != nil {
		t.Fatal(err)
	}
	res, err := m.Up(ctx, migrate.UpOptions{})
	if err != nil || len(res.Applied) != 1 || res.To != 2 {
		t.Fatalf("Up after the fix = %+v, %v", res, err)
	}
	wantVersion(t, m, 2)
	if _, err := m.Repair(ctx, migrate.Resume, migrate.RepairOptions{}); !errors.Is(err, migrate.ErrNothingToRepair) {
		t.Fatalf("Repair = %v, want ErrNothingToRepair", err)
	}
	if problems, err := m.Verify(ctx); err != nil || len(problems) != 0 {
		t.Fatalf("Verify after repair = %+v, %v", problems, err)
	}
	var rows int
	if err := db.QueryRow("SELECT count(*) FROM needed").Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("rows in needed = %d, %v; want 1", rows, err)
	}
}

// TestInvalidIndexReported: a CREATE INDEX CONCURRENTLY that fails leaves an
// INVALID index; the error and status name it.
func TestInvalidIndexReported(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.Postgres(t)
	files := fstest.MapFS{
		"00001_a.sql":   sqlFile("CREATE TABLE a (id int);\nINSERT INTO a VALUES (1), (1);", "DROP TABLE a;"),
		"00002_idx.sql": {Data: []byte("-- +goose NO TRANSACTION\n-- +goose Up\nCREATE UNIQUE INDEX CONCURRENTLY a_id ON a (id);\n-- +goose Down\nDROP INDEX CONCURRENTLY a_id;\n")},
	}
	m := pgMigrator(t, url, files, migrate.Options{})
	_, err := m.Up(ctx, migrate.UpOptions{})
	var merr *migrate.MigrationError
	if !errors.As(err, &merr) || len(merr.InvalidIndexes) != 1 || merr.InvalidIndexes[0] != "a_id" {
		t.Fatalf("Up = %v, want the INVALID index a_id named", err)
	}
	if !strings.Contains(err.Error(), "INVALID index left behind: a_id") {
		t.Errorf("error text = %v", err)
	}
	st, err := m.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range st.Problems {
		found = found || (p.Kind == migrate.InvalidIndex && p.File == "a_id")
	}
	if !found {
		t.Errorf("status problems = %+v, want invalid-index a_id", st.Problems)
	}
	// Fix the data, drop the index, forget the marker and apply again.
	db := openPG(t, url)
	defer db.Close()
	if _, err := db.Exec("DELETE FROM a; DROP INDEX a_id"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Repair(ctx, migrate.Restart, migrate.RepairOptions{}); err != nil {
		t.Fatalf("Repair restart: %v", err)
	}
	wantVersion(t, m, 2)
}

// TestInvalidIndexRebuiltOnRetry: the INVALID index a failed CREATE INDEX
// CONCURRENTLY leaves needs no hand: once the data is fixed, the next Up
// resumes at that statement, drops the index and builds it again (the
// error used to say "drop it before retrying").
func TestInvalidIndexRebuiltOnRetry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.Postgres(t)
	files := fstest.MapFS{
		"00001_a.sql":   sqlFile("CREATE TABLE a (id int);\nINSERT INTO a VALUES (1), (1);", "DROP TABLE a;"),
		"00002_idx.sql": {Data: []byte("-- +goose NO TRANSACTION\n-- +goose Up\nCREATE UNIQUE INDEX CONCURRENTLY a_id ON a (id);\n-- +goose Down\nDROP INDEX CONCURRENTLY a_id;\n")},
	}
	m := pgMigrator(t, url, files, migrate.Options{})
	var merr *migrate.MigrationError
	if _, err := m.Up(ctx, migrate.UpOptions{}); !errors.As(err, &merr) || len(merr.InvalidIndexes) != 1 {
		t.Fatalf("Up = %v, want the INVALID index a_id named", err)
	}
	db := openPG(t, url)
	defer db.Close()
	if _, err := db.Exec("DELETE FROM a WHERE ctid = (SELECT min(ctid) FROM a)"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Up(ctx, migrate.UpOptions{}); err != nil {
		t.Fatalf("Up after fixing the data, the INVALID index still there = %v", err)
	}
	wantVersion(t, m, 2)
	var valid bool
	if err := db.QueryRow("SELECT indisvalid FROM pg_index WHERE indexrelid = 'a_id'::regclass").Scan(&valid); err != nil || !valid {
		t.Fatalf("a_id valid = %v, %v; want a valid index", valid, err)
	}
}

// TestLockWaitOutlastsSilentHolder: a holder that never signals (goose, or
// one that died without releasing) keeps the waiter looking again every
// second on the same connection, until the lock is free.
func TestLockWaitOutlastsSilentHolder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.Postgres(t)
	holder := openPG(t, url)
	defer holder.Close()
	c, err := holder.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, "SELECT pg_advisory_lock(4097083626)"); err != nil {
		t.Fatal(err)
	}
	var holderPID int
	if err := c.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&holderPID); err != nil {
		t.Fatal(err)
	}
	logs := &recordLog{ch: make(chan slog.Record, 64)}
	m := pgMigrator(t, url, threeTables(), migrate.Options{LockTimeout: time.Minute, Logger: slog.New(logs)})
	type result struct {
		res *migrate.Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := m.Up(ctx, migrate.UpOptions{})
		done <- result{res, err}
	}()
	// The runner says it waits, naming our session as the holder, while
	// the lock is still ours.
	wantHolder := fmt.Sprintf("pid %d ", holderPID)
	for waiting := false; !waiting; {
		select {
		case r := <-logs.ch:
			if r.Message != "waiting for the migration lock" {
				continue
			}
			r.Attrs(func(a slog.Attr) bool {
				waiting = waiting || a.Key == "holder" && strings.HasPrefix(a.Value.String(), wantHolder)
				return true
			})
			if !waiting {
				t.Fatalf("waiting for the lock, the runner named another holder: %v (want %s...)", r, wantHolder)
			}
		case r := <-done:
			t.Fatalf("Up returned while the lock was held: %+v, %v", r.res, r.err)
		}
	}
	if _, err := c.ExecContext(ctx, "SELECT pg_advisory_unlock(4097083626)"); err != nil { // no NOTIFY, as goose
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || len(r.res.Applied) != 3 {
		t.Fatalf("Up behind a silent holder = %+v, %v", r.res, r.err)
	}
	if r.res.LockWait <= 0 {
		t.Fatalf("lock wait %s after waiting for the holder, want > 0", r.res.LockWait)
	}

	// And a lock timeout gives the typed error.
	if _, err := c.ExecContext(ctx, "SELECT pg_advisory_lock(4097083626)"); err != nil {
		t.Fatal(err)
	}
	files := threeTables()
	files["00004_d.sql"] = sqlFile("CREATE TABLE d (id int);", "DROP TABLE d;")
	_, err = pgMigrator(t, url, files, migrate.Options{LockTimeout: 1500 * time.Millisecond}).Up(ctx, migrate.UpOptions{})
	if !errors.Is(err, migrate.ErrLockTimeout) {
		t.Fatalf("Up with the lock held = %v, want ErrLockTimeout", err)
	}
}

// TestErrorLines: whatever kind of error, and whichever statement, the
// MigrationError names the failing statement's line, although a file's
// statements travel to the server in one round trip.
func TestErrorLines(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		body string
		line int
	}{
		"syntax, later statement":  {"CREATE TABLE a (id int);\n\nSELEC 1;\nCREATE TABLE b (id int);", 3},
		"syntax, first statement":  {"CREAT TABLE a (id int);\nCREATE TABLE b (id int);", 1},
		"runtime, third statement": {"CREATE TABLE a (id int);\nINSERT INTO a VALUES (1);\nINSERT INTO a VALUES ('x');", 3},
		"block":                    {"CREATE TABLE a (id int);\n-- +goose StatementBegin\nDO $$ BEGIN RAISE EXCEPTION 'boom'; END $$;\n-- +goose StatementEnd", 3},
		"unicode before the error": {"CREATE TABLE \"äöü\" (id int);\nSELEC 'ß';", 2},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			url := testdb.Postgres(t)
			files := fstest.MapFS{"00001_x.sql": {Data: []byte("-- +goose Up\n" + tc.body + "\n")}}
			_, err := pgMigrator(t, url, files, migrate.Options{}).Up(context.Background(), migrate.UpOptions{})
			var merr *migrate.MigrationError
			if !errors.As(err, &merr) || merr.Line != tc.line+1 {
				t.Fatalf("Up = %v; want the statement at line %d", err, tc.line+1)
			}
			m := pgMigrator(t, url, files, migrate.Options{})
			wantVersion(t, m, 0)
		})
	}
}

// recordLog is a slog.Handler that hands every record to ch (dropping
// records when nobody reads).
type recordLog struct{ ch chan slog.Record }

func (h *recordLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordLog) Handle(_ context.Context, r slog.Record) error {
	select {
	case h.ch <- r.Clone():
	default:
	}
	return nil
}
func (h *recordLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordLog) WithGroup(string) slog.Handler      { return h }

// waitForQuery waits, for at most a minute, until another session of db's
// database runs a query containing prefix and matching cond (SQL on
// pg_stat_activity).
func waitForQuery(t testing.TB, db *sql.DB, prefix, cond string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	q := `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
		AND state = 'active' AND strpos(query, $1) > 0 AND ` + cond
	for {
		var n int
		if err := db.QueryRowContext(ctx, q, prefix).Scan(&n); err != nil {
			t.Fatalf("waiting for a session running %q (%s): %v", prefix, cond, err)
		}
		if n > 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no session ran %q (%s) within a minute", prefix, cond)
		case <-time.After(5 * time.Millisecond):
		}
	}
}
