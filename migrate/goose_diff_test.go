package migrate_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, as goose's CLI uses it
	"github.com/pressly/goose/v3"

	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/internal/testdb"
	"github.com/shiplock/shiplock/migrate"
)

// diffCase is a directory of migrations that goose and shiplock must apply
// with the same outcome.
type diffCase struct {
	name  string
	files map[string]string
	env   map[string]string
	fail  bool   // goose fails on it (asserted too)
	line  int    // the line shiplock's error names, when it fails
	at    string // where in the statement, when the server says
}

func diffCases() []diffCase {
	var big strings.Builder
	big.WriteString("-- +goose Up\nCREATE TABLE big (n int);\n")
	for i := range 100_000 {
		fmt.Fprintf(&big, "INSERT INTO big VALUES (%d);\n", i)
	}
	return []diffCase{
		{name: "semicolon line inside a string", fail: true, line: 3, files: map[string]string{
			"00001_a.sql": "-- +goose Up\nCREATE TABLE notes (body text);\nINSERT INTO notes VALUES ('first line;\nsecond line');\n",
		}},
		{name: "semicolon line inside $$ without StatementBegin", fail: true, line: 2, files: map[string]string{
			"00001_a.sql": "-- +goose Up\nCREATE FUNCTION answer() RETURNS int LANGUAGE sql AS $$\nSELECT 0;\nSELECT 42;\n$$;\nCREATE TABLE answers AS SELECT answer() AS a;\n",
		}},
		{name: "COMMIT then CREATE INDEX CONCURRENTLY", files: map[string]string{
			"00001_a.sql": "-- +goose Up\nCREATE TABLE items (id int);\nINSERT INTO items VALUES (1);\nCOMMIT;\nCREATE INDEX CONCURRENTLY items_id ON items (id);\n",
			"00002_b.sql": "-- +goose Up\nCREATE TABLE after_it (x int);\n",
		}},
		{name: "END then CREATE INDEX CONCURRENTLY", files: map[string]string{
			"00001_a.sql": "-- +goose Up\nCREATE TABLE items (id int);\nend;\nCREATE INDEX CONCURRENTLY items_id ON items (id);\n",
		}},
		{name: "standard_conforming_strings off", files: map[string]string{
			"00001_a.sql": "-- +goose Up\nCREATE TABLE quotes (q text);\nSET standard_conforming_strings = off;\nINSERT INTO quotes VALUES ('it\\'s');\nSET standard_conforming_strings = on;\n",
		}},
		{name: "semicolons in strings and comments", files: map[string]string{
			"00001_a.sql": "-- +goose Up\nCREATE TABLE t (s text); -- trailing; comment\n-- a comment line;\nINSERT INTO t VALUES ('x;y'), ('--not a comment;z');\n/* block; comment */ INSERT INTO t VALUES ('after');\n",
		}},
		{name: "tagged dollar quotes", files: map[string]string{
			"00001_a.sql": "-- +goose Up\n-- +goose StatementBegin\nCREATE FUNCTION f() RETURNS text LANGUAGE plpgsql AS $fn$\nBEGIN\n  RETURN $q$it's $$ here; really$q$;\nEND\n$fn$;\n-- +goose StatementEnd\nCREATE TABLE r AS SELECT f() AS v;\n",
		}},
		{name: "BEGIN and COMMIT inside the file", files: map[string]string{
			"00001_a.sql": "-- +goose Up\nBEGIN;\nCREATE TABLE a (x int);\nCOMMIT;\nBEGIN;\nINSERT INTO a VALUES (1);\nCOMMIT;\n",
			"00002_b.sql": "-- +goose Up\nINSERT INTO a VALUES (2);\n",
		}},
		{name: "failure after a mid-file COMMIT", fail: true, line: 5, files: map[string]string{
			"00001_a.sql": "-- +goose Up\nCREATE TABLE kept (x int);\nCOMMIT;\nINSERT INTO kept VALUES (1);\nINSERT INTO missing VALUES (1);\nINSERT INTO kept VALUES (2);\n",
		}},
		{name: "failure inside the transaction", fail: true, line: 4, at: "(at line 4, column 28)", files: map[string]string{
			"00001_a.sql": "-- +goose Up\nCREATE TABLE first (x int);\n",
			"00002_b.sql": "-- +goose Up\nCREATE TABLE second (x int);\nINSERT INTO second VALUES (1);\nINSERT INTO second VALUES ('x');\nINSERT INTO second VALUES (3);\n",
		}},
		{name: "DO block", files: map[string]string{
			"00001_a.sql": "-- +goose Up\nCREATE TABLE d (x int);\n-- +goose StatementBegin\nDO $$\nBEGIN\n  INSERT INTO d VALUES (1);\nEND\n$$;\n-- +goose StatementEnd\n",
		}},
		{name: "ENVSUB", env: map[string]string{"SHIPLOCK_DIFF_VALUE": "it''s; here"}, files: map[string]string{
			"00001_a.sql": "-- +goose Up\n-- +goose ENVSUB ON\nCREATE TABLE e (v text);\nINSERT INTO e VALUES ('${SHIPLOCK_DIFF_VALUE}');\n-- +goose ENVSUB OFF\n",
		}},
		{name: "StatementBegin holding several statements", files: map[string]string{
			"00001_a.sql": "-- +goose Up\n-- +goose StatementBegin\nCREATE TABLE m1 (x int);\nINSERT INTO m1 VALUES (1);\nCREATE TABLE m2 AS SELECT * FROM m1;\n-- +goose StatementEnd\n",
		}},
		{name: "StatementBegin holding COMMIT and CONCURRENTLY", fail: true, line: 3, files: map[string]string{
			"00001_a.sql": "-- +goose Up\n-- +goose StatementBegin\nCREATE TABLE c (x int);\nCOMMIT;\nCREATE INDEX CONCURRENTLY c_x ON c (x);\n-- +goose StatementEnd\n",
		}},
		{name: "100000 statements", files: map[string]string{"00001_big.sql": big.String()}},
	}
}

// TestGooseDifferential runs each case with goose (library, pgx stdlib
// driver, as goose's CLI runs) and with shiplock on fresh databases, and
// compares the outcome, the schema and data (pg_dump), and the
// goose_db_version rows.
func TestGooseDifferential(t *testing.T) {
	if _, err := exec.LookPath("pg_dump"); err != nil {
		t.Fatalf("pg_dump not found (install postgresql-client): %v", err)
	}
	goose.SetLogger(goose.NopLogger())
	if err := goose.SetDialect("postgres"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range diffCases() {
		t.Run(tc.name, func(t *testing.T) {
			if testing.Short() && strings.HasPrefix(tc.name, "100000") {
				t.Skip("-short")
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			dir := t.TempDir()
			for name, body := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}

			gooseURL := testdb.Postgres(t)
			gdb, err := sql.Open("pgx", gooseURL)
			if err != nil {
				t.Fatal(err)
			}
			gooseErr := goose.UpContext(context.Background(), gdb, dir)
			gdb.Close()

			ourURL := testdb.Postgres(t)
			db := openPG(t, ourURL)
			migs, err := migrate.Load(os.DirFS(dir), ".", nil, os.LookupEnv)
			if err != nil {
				t.Fatal(err)
			}
			_, ourErr := migrate.New(db, postgres.Dialect{}, migs, migrate.Options{}).Up(context.Background(), migrate.UpOptions{})
			db.Close()

			if (gooseErr != nil) != tc.fail {
				t.Fatalf("goose up = %v; the case says fail=%v", gooseErr, tc.fail)
			}
			if (ourErr != nil) != (gooseErr != nil) {
				t.Fatalf("shiplock up = %v; goose up = %v", ourErr, gooseErr)
			}
			if ourErr != nil {
				var merr *migrate.MigrationError
				if !errors.As(ourErr, &merr) || merr.Line != tc.line {
					t.Errorf("shiplock's error = %v; want a MigrationError at line %d", ourErr, tc.line)
				}
				if !strings.Contains(ourErr.Error(), tc.at) {
					t.Errorf("shiplock's error = %v; want it to say %q", ourErr, tc.at)
				}
			}
			if g, s := dumpAll(t, gooseURL), dumpAll(t, ourURL); g != s {
				t.Errorf("pg_dump after goose and after shiplock differ:\n--- goose\n%s\n--- shiplock\n%s", g, s)
			}
			if g, s := versionRows(t, gooseURL), versionRows(t, ourURL); g != s {
				t.Errorf("goose_db_version after goose = %s, after shiplock = %s", g, s)
			}
		})
	}
}

// dumpAll is the schema and data without shiplock's table and without
// goose_db_version's data (its timestamps differ; versionRows compares
// it).
func dumpAll(t testing.TB, url string) string {
	t.Helper()
	return testdb.PgDump(t, url, "--no-owner", "--no-privileges", "--exclude-table=shiplock_versions", "--exclude-table-data=goose_db_version")
}

// TestAllModeRefusesTxControl: a file that commits by itself cannot be
// part of one all-or-nothing transaction; it is refused before anything
// runs, as a NO TRANSACTION file is.
func TestAllModeRefusesTxControl(t *testing.T) {
	db := openPG(t, testdb.Postgres(t))
	defer db.Close()
	files := fstest.MapFS{
		"00001_a.sql": sqlFile("CREATE TABLE a (x int);", "DROP TABLE a;"),
		"00002_b.sql": sqlFile("CREATE TABLE b (x int);\n-- a comment\n  commit ;\nCREATE INDEX CONCURRENTLY b_x ON b (x);", "DROP TABLE b;"),
	}
	m := migrate.New(db, postgres.Dialect{}, load(t, files), migrate.Options{TxMode: migrate.TxAll})
	_, err := m.Up(context.Background(), migrate.UpOptions{})
	var ferr *migrate.FileError
	if !errors.As(err, &ferr) || ferr.File != "00002_b.sql" {
		t.Fatalf("Up in mode all = %v; want a FileError naming 00002_b.sql", err)
	}
	if tableExists(t, db, "a") {
		t.Fatal("00001 ran although the run was refused")
	}
	// In file mode the same directory runs, as goose runs it.
	m = migrate.New(db, postgres.Dialect{}, load(t, files), migrate.Options{})
	if _, err := m.Up(context.Background(), migrate.UpOptions{}); err != nil {
		t.Fatalf("Up in mode file: %v", err)
	}
}

// TestOwnCommitFileTracked: a file that commits by itself runs with
// progress records, so after a failure (or a crash) past its COMMIT the
// next run goes on from the failed statement instead of re-running the
// file from the top (CREATE TABLE: "already exists", INSERT: a second
// row); a failure before its COMMIT leaves nothing, and the next run
// starts over.
func TestOwnCommitFileTracked(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		up   string
		line int // of the failing statement
		rows int // in kept after each run; -1: no table
	}{
		{"after its COMMIT", "CREATE TABLE kept (x int);\nCOMMIT;\nINSERT INTO kept VALUES (1);\nINSERT INTO missing VALUES (1);\nINSERT INTO kept VALUES (2);", 5, 1},
		{"before its COMMIT", "CREATE TABLE kept (x int);\nINSERT INTO missing VALUES (1);\nCOMMIT;\nINSERT INTO kept VALUES (2);", 3, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openPG(t, testdb.Postgres(t))
			defer db.Close()
			files := fstest.MapFS{"00001_a.sql": sqlFile(tc.up, "DROP TABLE kept;")}
			m := migrate.New(db, postgres.Dialect{}, load(t, files), migrate.Options{})
			for run := 1; run <= 2; run++ {
				_, err := m.Up(ctx, migrate.UpOptions{})
				var merr *migrate.MigrationError
				if !errors.As(err, &merr) || merr.Line != tc.line {
					t.Fatalf("run %d: Up = %v; want the failure at line %d again", run, err, tc.line)
				}
				rows := -1
				if tableExists(t, db, "kept") {
					if err := db.QueryRow("SELECT count(*) FROM kept").Scan(&rows); err != nil {
						t.Fatal(err)
					}
				}
				if rows != tc.rows {
					t.Fatalf("run %d: rows in kept = %d, want %d (-1: no table)", run, rows, tc.rows)
				}
			}
		})
	}
}

// A lock conflict inside the block a file's own COMMIT will close is not
// retried statement by statement (the block is aborted: the retry would
// only see 25P02 and hide the conflict), leaves no progress record behind
// (the ROLLBACK takes it away) and logs no false warning about one.
func TestOwnCommitFileLockConflictInBlock(t *testing.T) {
	ctx := context.Background()
	url := testdb.Postgres(t)
	db := openPG(t, url)
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE busy (x int)"); err != nil {
		t.Fatal(err)
	}
	holder := openPG(t, url)
	defer holder.Close()
	tx, err := holder.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec("LOCK TABLE busy IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	files := fstest.MapFS{"00001_a.sql": sqlFile("CREATE TABLE kept (x int);\nINSERT INTO busy VALUES (1);\nCOMMIT;\nINSERT INTO kept VALUES (2);", "DROP TABLE kept;")}
	var logs bytes.Buffer
	m := migrate.New(db, postgres.Dialect{}, load(t, files), migrate.Options{
		DDLLockTimeout: 50 * time.Millisecond, LockRetries: 2, RetryDelay: time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	_, err = m.Up(ctx, migrate.UpOptions{})
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "55P03" {
		t.Fatalf("Up = %v; want the lock conflict (55P03)", err)
	}
	if strings.Contains(logs.String(), "stays recorded as running") || strings.Contains(logs.String(), "25P02") {
		t.Errorf("misleading log after a failure inside the block:\n%s", logs.String())
	}
	var markers int
	if err := db.QueryRow("SELECT count(*) FROM shiplock_versions WHERE state <> 'applied'").Scan(&markers); err != nil {
		t.Fatal(err)
	}
	if markers != 0 || tableExists(t, db, "kept") {
		t.Fatalf("after a failure before its COMMIT: %d markers, table kept exists: %v; want nothing left", markers, tableExists(t, db, "kept"))
	}
}
