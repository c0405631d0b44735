package migrate_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/shiplock/shiplock/dialect"
	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/dialect/sqlite"
	"github.com/shiplock/shiplock/internal/testdb"
	"github.com/shiplock/shiplock/migrate"
)

// tableFiles are four migrations, one outside a transaction, for the
// custom-table differential tests.
var tableFiles = map[string]string{
	"00001_accounts.sql": "-- +goose Up\nCREATE TABLE accounts (id integer PRIMARY KEY, email text NOT NULL);\n-- +goose Down\nDROP TABLE accounts;\n",
	"00002_entries.sql":  "-- +goose Up\nCREATE TABLE entries (id integer PRIMARY KEY, account_id integer NOT NULL REFERENCES accounts (id), cents bigint NOT NULL);\nINSERT INTO accounts VALUES (1, 'a@example.com');\n-- +goose Down\nDROP TABLE entries;\nDELETE FROM accounts;\n",
	"00003_index.sql":    "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX entries_account ON entries (account_id);\n-- +goose Down\nDROP INDEX entries_account;\n",
	"00004_status.sql":   "-- +goose Up\nALTER TABLE accounts ADD COLUMN status text NOT NULL DEFAULT 'open';\n-- +goose Down\nALTER TABLE accounts DROP COLUMN status;\n",
}

// tableDB is one database of a differential test: how goose and shiplock
// open it, and what it holds.
type tableDB interface {
	goose() *sql.DB
	shiplock() (*sql.DB, dialect.Dialect)
	dump(t testing.TB) string // schema and data, without shiplock's table and the version table's data
	rows(t testing.TB) string // the version table's rows, in id order
}

// TestGooseDifferentialTable runs goose (library, with goose.SetTableName as
// its -table and GOOSE_TABLE set it) and shiplock (with the same table) on
// the same directory: each alone, goose then shiplock, shiplock then goose,
// and each reverting what the other applied. The schema and data and the
// version rows must be the same every way; the default goose_db_version is
// never created.
func TestGooseDifferentialTable(t *testing.T) {
	if _, err := exec.LookPath("pg_dump"); err != nil {
		t.Fatalf("pg_dump not found (install postgresql-client): %v", err)
	}
	goose.SetLogger(goose.NopLogger())
	t.Cleanup(func() { goose.SetTableName(goose.DefaultTablename); _ = goose.SetDialect("postgres") })
	dir := writeTree(t, tableFiles)
	for _, tc := range []struct {
		driver, table string
	}{
		{"postgres", "app_versions"},
		{"postgres", "migr.app_versions"},
		{"postgres", "Migr.AppVersions"},
		{"sqlite3", "app_versions"},
		{"sqlite3", "AppVersions"},
		{"sqlite3", "main.app_versions"},
	} {
		t.Run(tc.driver+" "+tc.table, func(t *testing.T) {
			if err := goose.SetDialect(tc.driver); err != nil {
				t.Fatal(err)
			}
			goose.SetTableName(tc.table)
			table, err := dialect.ParseTable(tc.table)
			if err != nil {
				t.Fatal(err)
			}
			newDB := func() tableDB {
				if tc.driver == "sqlite3" {
					return newSQLiteTableDB(t, table)
				}
				return newPGTableDB(t, table)
			}
			migs, err := migrate.Load(os.DirFS(dir), ".", nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			gooseUp := func(db tableDB, to int64) {
				t.Helper()
				var err error
				if to > 0 {
					err = goose.UpToContext(ctx, db.goose(), dir, to)
				} else {
					err = goose.UpContext(ctx, db.goose(), dir)
				}
				if err != nil {
					t.Fatalf("goose up %d: %v", to, err)
				}
			}
			ship := func(db tableDB) *migrate.Migrator {
				sdb, d := db.shiplock()
				return migrate.New(sdb, d, migs, migrate.Options{})
			}
			shipUp := func(db tableDB, to int64) {
				t.Helper()
				if _, err := ship(db).Up(ctx, migrate.UpOptions{To: to}); err != nil {
					t.Fatalf("shiplock up %d: %v", to, err)
				}
			}

			byGoose := newDB()
			gooseUp(byGoose, 0)
			want, wantRows := byGoose.dump(t), byGoose.rows(t)
			if !strings.Contains(wantRows, "4 true") {
				t.Fatalf("goose's rows = %s", wantRows)
			}

			byShiplock := newDB()
			shipUp(byShiplock, 0)
			gooseThenShiplock := newDB()
			gooseUp(gooseThenShiplock, 2)
			shipUp(gooseThenShiplock, 0)
			shiplockThenGoose := newDB()
			shipUp(shiplockThenGoose, 2)
			gooseUp(shiplockThenGoose, 0)
			for name, db := range map[string]tableDB{"shiplock": byShiplock, "goose then shiplock": gooseThenShiplock, "shiplock then goose": shiplockThenGoose} {
				if got := db.dump(t); got != want {
					t.Errorf("%s: the dump differs from goose's:\n--- goose\n%s\n--- %s\n%s", name, want, name, got)
				}
				if got := db.rows(t); got != wantRows {
					t.Errorf("%s: version rows = %s; goose's = %s", name, got, wantRows)
				}
			}
			if st, err := ship(gooseThenShiplock).Status(ctx); err != nil || st.Current != 4 || st.Pending != 0 {
				t.Fatalf("shiplock status after goose and shiplock: %+v, %v", st, err)
			}

			// Each reverts the other's work to version 1.
			if err := goose.DownToContext(ctx, byShiplock.goose(), dir, 1); err != nil {
				t.Fatalf("goose down-to 1 after shiplock: %v", err)
			}
			if _, err := ship(byGoose).Down(ctx, 1); err != nil {
				t.Fatalf("shiplock down --to 1 after goose: %v", err)
			}
			if g, s := byShiplock.dump(t), byGoose.dump(t); g != s {
				t.Errorf("after reverting to 1 the dumps differ:\n--- goose reverting\n%s\n--- shiplock reverting\n%s", g, s)
			}
			if g, s := byShiplock.rows(t), byGoose.rows(t); g != s {
				t.Errorf("after reverting to 1: rows by goose = %s, by shiplock = %s", g, s)
			}
		})
	}
}

type pgTableDB struct {
	url   string
	table dialect.Table
	g, s  *sql.DB
}

func newPGTableDB(t testing.TB, table dialect.Table) *pgTableDB {
	url := testdb.Postgres(t)
	g, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	if _, err := g.Exec(`CREATE SCHEMA migr`); err != nil {
		t.Fatal(err)
	}
	s := openPG(t, url)
	t.Cleanup(func() { s.Close() })
	return &pgTableDB{url: url, table: table, g: g, s: s}
}

func (p *pgTableDB) goose() *sql.DB { return p.g }
func (p *pgTableDB) shiplock() (*sql.DB, dialect.Dialect) {
	return p.s, postgres.Dialect{Table: p.table}
}

func (p *pgTableDB) dump(t testing.TB) string {
	t.Helper()
	v, r := p.table.Names()
	out := testdb.PgDump(t, p.url, "--no-owner", "--no-privileges", "--exclude-table="+r, "--exclude-table-data="+v)
	if strings.Contains(out, "goose_db_version") || strings.Contains(out, "shiplock_versions") {
		t.Errorf("a default table exists beside %s:\n%s", v, out)
	}
	return out
}

func (p *pgTableDB) rows(t testing.TB) string { return tableRows(t, p.s, p.table) }

// tableRows reads the version table as goose writes its name.
func tableRows(t testing.TB, db *sql.DB, table dialect.Table) string {
	t.Helper()
	rows, err := db.Query("SELECT version_id, is_applied FROM " + table.String() + " ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var (
			v       int64
			applied bool
		)
		if err := rows.Scan(&v, &applied); err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.TrimSpace(strings.Join([]string{itoa(v), boolString(applied)}, " ")))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return "[" + strings.Join(out, " ") + "]"
}

type sqliteTableDB struct {
	table dialect.Table
	g, s  *sql.DB
	d     *sqlite.Dialect
}

func newSQLiteTableDB(t testing.TB, table dialect.Table) *sqliteTableDB {
	path := filepath.Join(t.TempDir(), "app.db")
	g, err := sql.Open("sqlite", path) // goose's CLI opens sqlite3 with modernc's "sqlite" driver
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	s, d, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	d.Table = table
	return &sqliteTableDB{table: table, g: g, s: s, d: d}
}

func (q *sqliteTableDB) goose() *sql.DB                       { return q.g }
func (q *sqliteTableDB) shiplock() (*sql.DB, dialect.Dialect) { return q.s, q.d }

// dump is every schema object's SQL text as SQLite keeps it, and the
// rows of the application's tables.
func (q *sqliteTableDB) dump(t testing.TB) string {
	t.Helper()
	_, records := q.table.Names()
	rows, err := q.s.Query(`SELECT type, name, coalesce(sql, '') FROM sqlite_master WHERE lower(name) <> lower(?) ORDER BY type, name`, strings.TrimPrefix(records, "main."))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var typ, name, text string
		if err := rows.Scan(&typ, &name, &text); err != nil {
			t.Fatal(err)
		}
		if name == "goose_db_version" || name == "shiplock_versions" {
			t.Errorf("a default table exists beside %s", q.table)
		}
		out = append(out, typ+" "+name+": "+text)
	}
	var data string
	if err := q.s.QueryRow(`SELECT coalesce(group_concat(id || ',' || email || ',' || coalesce(status, ''), ';'), '') FROM accounts`).Scan(&data); err != nil && !strings.Contains(err.Error(), "no such column") {
		t.Fatal(err)
	}
	return strings.Join(out, "\n") + "\naccounts: " + data
}

func (q *sqliteTableDB) rows(t testing.TB) string { return tableRows(t, q.s, q.table) }

// TestUpRecordsGooseChecksums: a database goose migrated fully gets the
// checksums of its versions at the first shiplock up, although nothing is
// pending; that run needs the migration lock, the runs after it do not
// (the no-op start stays read-only), and verify no longer reports them.
func TestUpRecordsGooseChecksums(t *testing.T) {
	goose.SetLogger(goose.NopLogger())
	if err := goose.SetDialect("postgres"); err != nil {
		t.Fatal(err)
	}
	dir := writeTree(t, tableFiles)
	url := testdb.Postgres(t)
	db := openPG(t, url)
	defer db.Close()
	gdb, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer gdb.Close()
	ctx := context.Background()
	if err := goose.UpContext(ctx, gdb, dir); err != nil {
		t.Fatal(err)
	}
	migs, err := migrate.Load(os.DirFS(dir), ".", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := migrate.New(db, postgres.Dialect{}, migs, migrate.Options{LockTimeout: 300 * time.Millisecond})
	problems, err := m.Verify(ctx)
	if err != nil || len(problems) != 4 || problems[0].Kind != migrate.Unrecorded {
		t.Fatalf("Verify after goose = %v, %v; want 4 unrecorded versions", problems, err)
	}

	// Another runner holds goose's lock: the recording run must wait for it.
	holder, err := gdb.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	hold := func() {
		var ok bool
		if err := holder.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", postgres.LockID).Scan(&ok); err != nil || !ok {
			t.Fatalf("hold the lock: %v, %v", ok, err)
		}
	}
	release := func() {
		if _, err := holder.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", postgres.LockID); err != nil {
			t.Fatal(err)
		}
	}
	hold()
	if _, err := m.Up(ctx, migrate.UpOptions{}); !errors.Is(err, migrate.ErrLockTimeout) {
		t.Fatalf("Up with checksums to record, lock held elsewhere = %v; want the lock timeout", err)
	}
	release()

	res, err := m.Up(ctx, migrate.UpOptions{})
	if err != nil || len(res.Applied) != 0 || res.From != 4 || res.To != 4 {
		t.Fatalf("Up = %+v, %v; want nothing applied, at 4", res, err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM shiplock_versions WHERE state = 'applied' AND checksum <> ''`).Scan(&n); err != nil || n != 4 {
		t.Fatalf("recorded checksums = %d, %v; want 4", n, err)
	}
	if problems, err := m.Verify(ctx); err != nil || len(problems) != 0 {
		t.Fatalf("Verify after the recording up = %v, %v; want none", problems, err)
	}

	// Recorded: the next up needs no lock.
	hold()
	defer release()
	if res, err := m.Up(ctx, migrate.UpOptions{}); err != nil || res.LockWait != 0 || len(res.Applied) != 0 {
		t.Fatalf("no-op Up with the lock held elsewhere = %+v, %v; want done without the lock", res, err)
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func boolString(b bool) string { return strconv.FormatBool(b) }
