package goosemigrations_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, as goose's CLI uses it
	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // the "sqlite" driver

	"github.com/shiplock/shiplock/goosemigrations"
	_ "github.com/shiplock/shiplock/goosemigrations/testdata/gomig" // registers its Go migrations with goose
	"github.com/shiplock/shiplock/internal/testdb"
	"github.com/shiplock/shiplock/shiplockmain"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// target is a real database kind, as goose and shiplock each open it.
type target struct {
	name, gooseDialect, driver string
	// newDB returns shiplock's --database-url of a fresh database and the
	// DSN goose's driver opens.
	newDB func(t testing.TB) (url, dsn string)
	// dump is the schema and the data, goose_db_version's timestamps and
	// shiplock's own table left out.
	dump func(t testing.TB, dsn string) string
}

var targets = []target{
	{"sqlite", "sqlite3", "sqlite", func(t testing.TB) (string, string) {
		path := testdb.SQLite(t)
		return "sqlite://" + path, path
	}, dumpSQLite},
	{"postgres", "postgres", "pgx", func(t testing.TB) (string, string) {
		url := testdb.Postgres(t)
		return url, url
	}, dumpPostgres},
}

func migrationsDir(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "gomig"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// gooseUp applies with goose's library (to 0: everything), as goose's CLI
// built with these Go migrations would.
func gooseUp(t testing.TB, tg target, dsn string, to int64) error {
	t.Helper()
	return withGoose(t, tg, dsn, func(db *sql.DB) error {
		if to == 0 {
			return goose.UpContext(context.Background(), db, migrationsDir(t))
		}
		return goose.UpToContext(context.Background(), db, migrationsDir(t), to)
	})
}

func withGoose(t testing.TB, tg target, dsn string, fn func(*sql.DB) error) error {
	t.Helper()
	if err := goose.SetDialect(tg.gooseDialect); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open(tg.driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return fn(db)
}

// shiplock runs the public entry in-process, as a team's binary runs it.
func shiplock(t testing.TB, url string, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	args = append([]string{"--log-format", "text", "--database-url", url, "--dir", migrationsDir(t)}, args...)
	code := shiplockmain.Run(context.Background(), args,
		shiplockmain.Streams{In: strings.NewReader(""), Out: &out, Err: &out, LookupEnv: os.LookupEnv},
		shiplockmain.Options{GoMigrations: goosemigrations.Collect})
	return code, out.String()
}

func shiplockOK(t testing.TB, url string, args ...string) string {
	t.Helper()
	code, out := shiplock(t, url, args...)
	if code != 0 {
		t.Fatalf("shiplock %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

func query(t testing.TB, tg target, dsn, q string) string {
	t.Helper()
	db, err := sql.Open(tg.driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return rowsText(t, db, q)
}

func rowsText(t testing.TB, db *sql.DB, q string) string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		fields := make([]string, len(vals))
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			fields[i] = fmt.Sprint(v)
		}
		out = append(out, strings.Join(fields, " "))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return "[" + strings.Join(out, "; ") + "]"
}

const versionRows = "SELECT version_id, is_applied FROM goose_db_version ORDER BY id"

func dumpPostgres(t testing.TB, url string) string {
	t.Helper()
	dump := testdb.PgDump(t, url, "--no-owner", "--no-privileges", "--exclude-table=shiplock_versions", "--exclude-table-data=goose_db_version")
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return dump + "\nversions " + rowsText(t, db, versionRows)
}

func dumpSQLite(t testing.TB, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var b strings.Builder
	rows, err := db.Query("SELECT name, sql FROM sqlite_master WHERE name NOT LIKE 'shiplock%' AND name NOT LIKE 'sqlite%' ORDER BY name")
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		var ddl sql.NullString
		if err := rows.Scan(&name, &ddl); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s: %s\n", name, ddl.String)
		if name != "goose_db_version" && strings.HasPrefix(ddl.String, "CREATE TABLE") {
			tables = append(tables, name)
		}
	}
	rows.Close()
	for _, name := range tables {
		fmt.Fprintf(&b, "%s rows %s\n", name, rowsText(t, db, "SELECT * FROM "+name+" ORDER BY 1"))
	}
	return b.String() + "versions " + rowsText(t, db, versionRows)
}

func same(t testing.TB, what, goose, ours string) {
	t.Helper()
	if goose != ours {
		t.Fatalf("%s: goose and shiplock differ:\n--- goose\n%s\n--- shiplock\n%s", what, goose, ours)
	}
}

// failBoth makes Go migration version fail half-way, then runs goose and
// shiplock up on fresh databases: both must fail, and leave the same
// database. It returns goose's DSN, and shiplock's URL, DSN and output.
func failBoth(t *testing.T, tg target, version string) (gDSN, url, dsn, out string) {
	t.Helper()
	t.Setenv("SHIPLOCK_TEST_GO_FAIL", version)
	_, gDSN = tg.newDB(t)
	if err := gooseUp(t, tg, gDSN, 0); err == nil {
		t.Fatalf("goose up succeeded; the case says version %s fails", version)
	}
	url, dsn = tg.newDB(t)
	code, out := shiplock(t, url, "up")
	if code == 0 || !strings.Contains(out, "version "+version+" fails half-way on purpose") {
		t.Fatalf("shiplock up: exit %d; want a failure naming version %s:\n%s", code, version, out)
	}
	same(t, "after the failure", tg.dump(t, gDSN), tg.dump(t, dsn))
	return gDSN, url, dsn, out
}

// TestGooseGoMigrationsDifferential applies a directory mixing SQL and
// goose-registered Go migrations with goose and with a shiplock built on
// shiplockmain and goosemigrations, each continuing the other, and
// compares schema, data and goose_db_version rows; Go migrations that fail
// half-way, inside goose's transaction and outside one, leave the same
// database after both.
func TestGooseGoMigrationsDifferential(t *testing.T) {
	if _, err := exec.LookPath("pg_dump"); err != nil {
		t.Fatalf("pg_dump not found (install postgresql-client): %v", err)
	}
	goose.SetLogger(goose.NopLogger())
	// goose's dialect is a global: the targets run one after the other.
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			_, refDSN := tg.newDB(t)
			if err := gooseUp(t, tg, refDSN, 0); err != nil {
				t.Fatalf("goose up: %v", err)
			}
			ref := tg.dump(t, refDSN)
			const wantData = "[1 ada <nil>; 2 grace <nil>]"
			if got := query(t, tg, refDSN, "SELECT id, name, email FROM users ORDER BY id"); got != wantData {
				t.Fatalf("users after goose = %s, want %s", got, wantData)
			}

			t.Run("shiplock applies all", func(t *testing.T) {
				url, dsn := tg.newDB(t)
				plan := shiplockOK(t, url, "plan")
				for _, want := range []string{"up 2 00002_seed_users.go (in a transaction)", "up 4 00004_backfill_audit.go (no transaction)", "up 5 00005_record_only.go", "-- Go migration"} {
					if !strings.Contains(plan, want) {
						t.Errorf("plan does not say %q:\n%s", want, plan)
					}
				}
				shiplockOK(t, url, "up")
				same(t, "after up", ref, tg.dump(t, dsn))
				status := shiplockOK(t, url, "status")
				for _, f := range []string{"00002_seed_users.go", "00004_backfill_audit.go", "00005_record_only.go"} {
					if !strings.Contains(status, f) {
						t.Errorf("status does not show %s:\n%s", f, status)
					}
				}
				if out := shiplockOK(t, url, "verify"); strings.Contains(out, "edited") {
					t.Errorf("verify calls a Go migration edited:\n%s", out)
				}
			})

			t.Run("runners at once", func(t *testing.T) {
				// The lock covers Go migrations as SQL files: the one
				// outside a transaction, which would add its rows again,
				// runs once.
				url, dsn := tg.newDB(t)
				const runners = 4
				codes := make(chan string, runners)
				for range runners {
					go func() {
						code, out := shiplock(t, url, "up")
						codes <- fmt.Sprintf("exit %d\n%s", code, out)
					}()
				}
				for range runners {
					if got := <-codes; !strings.HasPrefix(got, "exit 0\n") {
						t.Errorf("a runner: %s", got)
					}
				}
				same(t, "after concurrent runners", ref, tg.dump(t, dsn))
			})

			t.Run("goose first half, shiplock the rest", func(t *testing.T) {
				url, dsn := tg.newDB(t)
				if err := gooseUp(t, tg, dsn, 3); err != nil {
					t.Fatalf("goose up-to 3: %v", err)
				}
				shiplockOK(t, url, "up")
				same(t, "goose to 3, then shiplock", ref, tg.dump(t, dsn))
				if out := shiplockOK(t, url, "verify"); strings.Contains(out, "edited") {
					t.Errorf("verify calls a Go migration goose applied edited:\n%s", out)
				}
			})

			t.Run("shiplock first half, goose the rest", func(t *testing.T) {
				url, dsn := tg.newDB(t)
				shiplockOK(t, url, "up", "--to", "3")
				if err := gooseUp(t, tg, dsn, 0); err != nil {
					t.Fatalf("goose up after shiplock: %v", err)
				}
				same(t, "shiplock to 3, then goose", ref, tg.dump(t, dsn))
			})

			t.Run("down through Go migrations", func(t *testing.T) {
				gURL, gDSN := tg.newDB(t)
				_ = gURL
				if err := gooseUp(t, tg, gDSN, 0); err != nil {
					t.Fatal(err)
				}
				if err := withGoose(t, tg, gDSN, func(db *sql.DB) error {
					return goose.DownToContext(context.Background(), db, migrationsDir(t), 1)
				}); err != nil {
					t.Fatalf("goose down-to 1: %v", err)
				}
				url, dsn := tg.newDB(t)
				shiplockOK(t, url, "up")
				shiplockOK(t, url, "down", "--to", "1")
				want := tg.dump(t, gDSN)
				same(t, "down to 1", want, tg.dump(t, dsn))
				if got := query(t, tg, dsn, "SELECT count(*) FROM users"); got != "[0]" {
					t.Errorf("users after down to 1 = %s, want [0] (the Go down ran)", got)
				}
			})

			t.Run("tx Go migration fails half-way", func(t *testing.T) {
				_, url, dsn, _ := failBoth(t, tg, "2")
				// Nothing of it remains: not its first insert, not its version.
				if got := query(t, tg, dsn, "SELECT count(*) FROM users"); got != "[0]" {
					t.Errorf("users after the failed tx migration = %s, want [0]", got)
				}
				if got := query(t, tg, dsn, "SELECT max(version_id) FROM goose_db_version"); got != "[1]" {
					t.Errorf("newest version = %s, want [1]", got)
				}
				t.Setenv("SHIPLOCK_TEST_GO_FAIL", "")
				shiplockOK(t, url, "up")
				same(t, "rerun after the fix", ref, tg.dump(t, dsn))
			})

			t.Run("notx Go migration fails half-way", func(t *testing.T) {
				gDSN, url, dsn, out := failBoth(t, tg, "4")
				if !strings.Contains(out, "not recorded") {
					t.Errorf("shiplock's error does not say the version is not recorded:\n%s", out)
				}
				// What it did before failing stays, as with goose; no version.
				if got := query(t, tg, dsn, "SELECT note FROM audit"); got != "[backfill 1]" {
					t.Errorf("audit after the failed notx migration = %s, want [backfill 1]", got)
				}
				if got := query(t, tg, dsn, "SELECT max(version_id) FROM goose_db_version"); got != "[3]" {
					t.Errorf("newest version = %s, want [3]", got)
				}
				if out := shiplockOK(t, url, "status"); !strings.Contains(out, "pending") {
					t.Errorf("status after the failure does not show version 4 pending:\n%s", out)
				}
				// The operator undoes the partial work (the error says so),
				// then the next up runs it again from its start.
				for _, d := range []string{gDSN, dsn} {
					query(t, tg, d, "DELETE FROM audit")
				}
				t.Setenv("SHIPLOCK_TEST_GO_FAIL", "")
				if err := gooseUp(t, tg, gDSN, 0); err != nil {
					t.Fatal(err)
				}
				shiplockOK(t, url, "up")
				same(t, "rerun after the fix", tg.dump(t, gDSN), tg.dump(t, dsn))
				same(t, "rerun after the fix, against the reference", ref, tg.dump(t, dsn))
			})
		})
	}
}
