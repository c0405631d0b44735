package locktrace_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/shiplock/shiplock/dialect"
	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/internal/testdb"
	"github.com/shiplock/shiplock/locktrace"
	"github.com/shiplock/shiplock/migrate"
)

func TestMain(m *testing.M) { testdb.Main(m) }

func file(up string) *fstest.MapFile {
	return &fstest.MapFile{Data: []byte("-- +goose Up\n" + up + "\n-- +goose Down\nSELECT 1;\n")}
}

// files: two applied on the target, three pending.
var files = fstest.MapFS{
	"00001_accounts.sql": file("CREATE TABLE accounts (id bigint PRIMARY KEY, balance int, name text);"),
	"00002_ledger.sql":   file("CREATE TABLE ledger (id int, account_id bigint);"),
	"00003_types.sql": file(`ALTER TABLE accounts ALTER COLUMN balance TYPE bigint;
ALTER TABLE accounts ADD COLUMN created timestamptz DEFAULT now();
ALTER TABLE accounts ADD COLUMN touched timestamptz DEFAULT clock_timestamp();`),
	"00004_checks.sql": file(`ALTER TABLE accounts ALTER COLUMN name SET NOT NULL;
CREATE INDEX ledger_account ON ledger (account_id);
CREATE TABLE fresh (x int);
CREATE INDEX fresh_x ON fresh (x);
ALTER TABLE ledger ADD COLUMN note text;`),
	"00005_concurrent.sql": &fstest.MapFile{Data: []byte(`-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY accounts_name ON "accounts" (name);
ALTER TABLE ledger ADD COLUMN touched timestamptz DEFAULT clock_timestamp();
VACUUM FULL ledger;
`)},
	"00006_check.sql":    file("ALTER TABLE accounts ADD CONSTRAINT positive CHECK (balance >= 0) NOT VALID;"),
	"00007_validate.sql": file("ALTER TABLE accounts VALIDATE CONSTRAINT positive;\nUPDATE accounts SET balance = 1 WHERE id = 5;"),
}

func open(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", testdb.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// setup returns a target at version 2 with 1000 analyzed rows, and the
// migrations.
func setup(t *testing.T) (*sql.DB, []*migrate.Migration) {
	t.Helper()
	return setupWith(t, postgres.Dialect{})
}

func setupWith(t *testing.T, d postgres.Dialect) (*sql.DB, []*migrate.Migration) {
	t.Helper()
	ctx := context.Background()
	target := open(t)
	migs, err := migrate.Load(files, ".", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := migrate.New(target, d, migs, migrate.Options{}).Up(ctx, migrate.UpOptions{To: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := target.Exec(`INSERT INTO accounts SELECT g, g, 'n' || g FROM generate_series(1, 1000) g;
		INSERT INTO ledger SELECT g, g FROM generate_series(1, 500) g; ANALYZE accounts; ANALYZE ledger`); err != nil {
		t.Fatal(err)
	}
	return target, migs
}

// catalog is what the trace must leave as it was on the target.
func catalog(t *testing.T, db *sql.DB) string {
	t.Helper()
	var s string
	err := db.QueryRow(`SELECT string_agg(x, E'\n' ORDER BY x) FROM (
		SELECT c.relname || ' ' || c.relfilenode || ' ' || c.relkind::text || ' ' || coalesce((SELECT string_agg(attname || ':' || atttypid::regtype || ':' || attnotnull, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = c.oid AND attnum > 0), '') AS x
		FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace
		UNION ALL SELECT 'version ' || version_id || ' ' || is_applied FROM goose_db_version) v`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func pending(t *testing.T, migs []*migrate.Migration, from int64) []*migrate.Migration {
	var out []*migrate.Migration
	for _, m := range migs {
		if m.Version > from {
			out = append(out, m)
		}
	}
	return out
}

func find(t *testing.T, rep *locktrace.Report, file string, index int, rel string) *locktrace.Lock {
	t.Helper()
	for _, s := range rep.Steps {
		if s.File != file || s.Index != index {
			continue
		}
		for i, l := range s.Locks {
			if l.Relation == rel {
				return &s.Locks[i]
			}
		}
		return nil
	}
	t.Fatalf("no step %s statement %d in the report", file, index)
	return nil
}

func TestTrace(t *testing.T) {
	ctx := context.Background()
	target, migs := setup(t)
	before := catalog(t, target)
	shadow := open(t)
	rep, err := locktrace.Trace(ctx, target, shadow, migs, 2, pending(t, migs, 2), locktrace.Options{Dialect: postgres.Dialect{}})
	if err != nil {
		t.Fatalf("Trace: %v", err)
	}
	if after := catalog(t, target); after != before {
		t.Errorf("the target changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if len(rep.Warnings) != 0 {
		t.Errorf("warnings on a faithful replay: %q", rep.Warnings)
	}
	type want struct {
		file          string
		index         int
		rel           string
		mode          locktrace.Mode // NoLock: no lock reported
		rewrite, scan bool
	}
	for _, w := range []want{
		{"00003_types.sql", 1, "public.accounts", locktrace.AccessExclusive, true, false},
		{"00003_types.sql", 2, "public.accounts", locktrace.NoLock, false, false}, // now(): no rewrite, lock already held
		{"00003_types.sql", 3, "public.accounts", locktrace.AccessExclusive, true, false},
		{"00004_checks.sql", 1, "public.accounts", locktrace.AccessExclusive, false, true},
		{"00004_checks.sql", 2, "public.ledger", locktrace.Share, false, true},
		{"00004_checks.sql", 5, "public.ledger", locktrace.AccessExclusive, false, false},
		{"00005_concurrent.sql", 1, "public.accounts", locktrace.ShareUpdateExclusive, false, true}, // documented; quoted name joined
		{"00005_concurrent.sql", 2, "public.ledger", locktrace.AccessExclusive, true, false},        // traced, in its own transaction
		{"00005_concurrent.sql", 3, "public.ledger", locktrace.AccessExclusive, true, false},        // VACUUM FULL, documented
		{"00006_check.sql", 1, "public.accounts", locktrace.AccessExclusive, false, false},          // NOT VALID: no scan
		{"00007_validate.sql", 1, "public.accounts", locktrace.ShareUpdateExclusive, false, true},
		{"00007_validate.sql", 2, "public.accounts_pkey", locktrace.RowExclusive, false, false}, // an index lookup is no full read
	} {
		l := find(t, rep, w.file, w.index, w.rel)
		name := fmt.Sprintf("%s statement %d on %s", w.file, w.index, w.rel)
		if w.mode == locktrace.NoLock {
			if l != nil {
				t.Errorf("%s: reported %+v, want nothing", name, *l)
			}
			continue
		}
		if l == nil {
			t.Errorf("%s: no lock reported, want %s", name, w.mode)
			continue
		}
		if l.Mode != w.mode || l.Rewrite != w.rewrite || l.Scan != w.scan {
			t.Errorf("%s: got %s rewrite=%v scan=%v, want %s rewrite=%v scan=%v", name, l.Mode, l.Rewrite, l.Scan, w.mode, w.rewrite, w.scan)
		}
		if l.Target == nil || (w.rel == "public.accounts" && l.Target.Rows != 1000) {
			t.Errorf("%s: target table %+v, want the target's accounts with 1000 rows", name, l.Target)
		}
	}
	if l := find(t, rep, "00003_types.sql", 3, "public.accounts"); l == nil || l.Since != 1 {
		t.Errorf("clock_timestamp() default under the lock of statement 1: %+v, want Since 1", l)
	}
	// A table made by this release is reported without a target table.
	if l := find(t, rep, "00004_checks.sql", 4, "public.fresh"); l == nil || l.Target != nil {
		t.Errorf("index on a table of this release: %+v, want a lock with no target table", l)
	}
	// In the NO TRANSACTION file, what cannot run in a transaction is
	// documented, the rest traced.
	for _, s := range rep.Steps {
		if s.File != "00005_concurrent.sql" {
			continue
		}
		if want := s.Index != 2; s.Traced == want {
			t.Errorf("%s statement %d: traced=%v, want %v (note %q)", s.File, s.Index, s.Traced, !want, s.Note)
		}
		if s.Index == 1 && !strings.Contains(s.Note, "CREATE INDEX CONCURRENTLY") || s.Index == 3 && !strings.Contains(s.Note, "VACUUM FULL") {
			t.Errorf("%s statement %d: note %q", s.File, s.Index, s.Note)
		}
	}
	if l := find(t, rep, "00003_types.sql", 1, "public.accounts"); l.Target.Bytes <= 0 {
		t.Errorf("target size of accounts: %d bytes", l.Target.Bytes)
	}

	// Thresholds: the rewrite of a 1000-row table crosses ACCESS
	// EXCLUSIVE=1000, not =1001; a SHARE scan crosses SHARE=500.
	rewrite := find(t, rep, "00003_types.sql", 1, "public.accounts")
	for _, c := range []struct {
		th   string
		l    *locktrace.Lock
		want bool
	}{
		{"ACCESS EXCLUSIVE=1000", rewrite, true},
		{"access-exclusive=1001", rewrite, false},
		{"AccessExclusiveLock", rewrite, true},
		{"SHARE=500", find(t, rep, "00004_checks.sql", 2, "public.ledger"), true},
		{"EXCLUSIVE", find(t, rep, "00004_checks.sql", 2, "public.ledger"), false},
		{"SHARE", find(t, rep, "00004_checks.sql", 5, "public.ledger"), false}, // brief: no rewrite or scan
	} {
		th, err := locktrace.ParseThreshold(c.th)
		if err != nil {
			t.Fatal(err)
		}
		if got := th.Exceeds(*c.l); got != c.want {
			t.Errorf("%s exceeded by %s on %s: %v, want %v", c.th, c.l.Mode, c.l.Relation, got, c.want)
		}
	}

	// The scratch database now holds the traced release: it is ahead of
	// the target and refuses a second trace.
	_, err = locktrace.Trace(ctx, target, shadow, migs, 2, pending(t, migs, 2), locktrace.Options{Dialect: postgres.Dialect{}})
	if !errors.Is(err, locktrace.ErrNotScratch) || !strings.Contains(err.Error(), "ahead") {
		t.Errorf("second trace on the same scratch database: %v, want ErrNotScratch (ahead)", err)
	}
}

func TestTraceRefusesForeignDatabases(t *testing.T) {
	ctx := context.Background()
	target, migs := setup(t)
	before := catalog(t, target)
	// The target itself, as the scratch database: it holds tables.
	_, err := locktrace.Trace(ctx, target, target, migs, 2, pending(t, migs, 2), locktrace.Options{Dialect: postgres.Dialect{}})
	if !errors.Is(err, locktrace.ErrNotScratch) {
		t.Errorf("target as scratch: %v, want ErrNotScratch", err)
	}
	if after := catalog(t, target); after != before {
		t.Errorf("the target changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// A database with tables of its own.
	other := open(t)
	if _, err := other.Exec(`CREATE TABLE precious (id int)`); err != nil {
		t.Fatal(err)
	}
	_, err = locktrace.Trace(ctx, target, other, migs, 2, pending(t, migs, 2), locktrace.Options{Dialect: postgres.Dialect{}})
	if !errors.Is(err, locktrace.ErrNotScratch) {
		t.Errorf("scratch with its own tables: %v, want ErrNotScratch", err)
	}
}

func TestTraceWarnsOnDrift(t *testing.T) {
	target, migs := setup(t)
	// Made by hand on the target: the replay cannot know it. And a target
	// goose migrated has no shiplock_versions: that is no difference.
	if _, err := target.Exec(`ALTER TABLE accounts ADD COLUMN by_hand int; DROP TABLE shiplock_versions`); err != nil {
		t.Fatal(err)
	}
	rep, err := locktrace.Trace(context.Background(), target, open(t), migs, 2, pending(t, migs, 2), locktrace.Options{Dialect: postgres.Dialect{}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "only in the target: public.accounts.by_hand integer") {
		t.Errorf("warnings %q, want one naming public.accounts.by_hand", rep.Warnings)
	}
}

// TestTraceCustomTable: goose's -table names the bookkeeping, which is
// neither traced nor called a difference between the databases.
func TestTraceCustomTable(t *testing.T) {
	table, err := dialect.ParseTable("App_Versions")
	if err != nil {
		t.Fatal(err)
	}
	d := postgres.Dialect{Table: table}
	target, migs := setupWith(t, d)
	// As goose leaves it: no table of shiplock's beside the version table.
	if _, err := target.Exec(`DROP TABLE app_versions_shiplock`); err != nil {
		t.Fatal(err)
	}
	rep, err := locktrace.Trace(context.Background(), target, open(t), migs, 2, pending(t, migs, 2), locktrace.Options{Dialect: d})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Warnings) != 0 {
		t.Errorf("warnings: %q", rep.Warnings)
	}
	for _, s := range rep.Steps {
		for _, l := range s.Locks {
			if strings.Contains(l.Relation, "app_versions") {
				t.Errorf("%s statement %d: bookkeeping traced: %+v", s.File, s.Index, l)
			}
		}
	}
}
