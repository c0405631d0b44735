package cli

import (
	"database/sql"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/internal/testdb"
)

// gooseVersion is the goose release shiplock is compatible with (go.mod's).
const gooseVersion = "v3.30.0"

var (
	gooseOnce sync.Once
	goosePath string
	gooseErr  error
)

// gooseCLI returns goose's own command, built from the module at
// gooseVersion (without the drivers these tests do not use) into the user's
// cache once; SHIPLOCK_TEST_GOOSE names a binary to use instead.
func gooseCLI(t *testing.T) string {
	t.Helper()
	gooseOnce.Do(func() {
		if p := os.Getenv("SHIPLOCK_TEST_GOOSE"); p != "" {
			goosePath = p
			return
		}
		cache, err := os.UserCacheDir()
		if err != nil {
			gooseErr = err
			return
		}
		bin := filepath.Join(cache, "shiplock-test", "goose-"+gooseVersion+"-mysql")
		goosePath = filepath.Join(bin, "goose")
		if _, err := os.Stat(goosePath); err == nil {
			return
		}
		cmd := exec.Command("go", "install", "-tags", "no_clickhouse no_libsql no_mssql no_azuresql no_vertica no_ydb",
			"github.com/pressly/goose/v3/cmd/goose@"+gooseVersion)
		cmd.Dir = os.TempDir() // outside this module: goose's own go.mod decides
		cmd.Env = append(os.Environ(), "GOBIN="+bin, "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
		if out, err := cmd.CombinedOutput(); err != nil {
			gooseErr = err
			t.Logf("go install goose: %s", out)
		}
	})
	if gooseErr != nil {
		t.Fatalf("build goose's CLI %s: %v", gooseVersion, gooseErr)
	}
	return goosePath
}

// runGoose runs goose's CLI in dir with only env (and PATH, HOME).
func runGoose(t *testing.T, dir string, env map[string]string, args ...string) {
	t.Helper()
	cmd := exec.Command(gooseCLI(t), args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("goose %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestGooseEnvDifferential: goose's CLI configured only by its environment
// (GOOSE_DRIVER, GOOSE_DBSTRING, GOOSE_MIGRATION_DIR, GOOSE_TABLE), by a
// .env file in its working directory, or by -env FILE, and shiplock given
// exactly the same, migrate the same directory on fresh databases: alone,
// goose then shiplock, shiplock then goose. The schema and data and the
// version rows must match goose's alone; shiplock's status and await read
// the same table.
func TestGooseEnvDifferential(t *testing.T) {
	migrations := writeDir(t, map[string]string{
		"00001_accounts.sql": "-- +goose Up\nCREATE TABLE accounts (id integer PRIMARY KEY, email text NOT NULL);\n-- +goose Down\nDROP TABLE accounts;\n",
		"00002_seed.sql":     "-- +goose Up\nINSERT INTO accounts VALUES (1, 'a@example.com');\n-- +goose Down\nDELETE FROM accounts;\n",
		"00003_index.sql":    "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY accounts_email ON accounts (email);\n-- +goose Down\nDROP INDEX accounts_email;\n",
		"00004_status.sql":   "-- +goose Up\nALTER TABLE accounts ADD COLUMN status text NOT NULL DEFAULT 'open';\n-- +goose Down\nALTER TABLE accounts DROP COLUMN status;\n",
	})
	newDB := func() string {
		url := testdb.Postgres(t)
		db, err := postgres.Open(url)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(`CREATE SCHEMA migr`); err != nil {
			t.Fatal(err)
		}
		return url
	}
	const table = "migr.app_versions"
	vars := func(url string) map[string]string {
		return map[string]string{"GOOSE_DRIVER": "postgres", "GOOSE_DBSTRING": url, "GOOSE_MIGRATION_DIR": migrations, "GOOSE_TABLE": table}
	}
	writeEnv := func(path string, vars map[string]string) {
		var b strings.Builder
		for k, v := range vars {
			b.WriteString(k + "=\"" + v + "\"\n")
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, how := range []string{"GOOSE_* variables", ".env", "-env file"} {
		t.Run(how, func(t *testing.T) {
			// goose and shiplock both run in work: .env is read from there.
			work := t.TempDir()
			t.Chdir(work)
			// run runs goose ("goose") or shiplock with the settings given
			// the way under test, on the database at url.
			run := func(tool, url string, args ...string) {
				t.Helper()
				env := map[string]string{}
				switch how {
				case "GOOSE_* variables":
					env = vars(url)
				case ".env":
					writeEnv(filepath.Join(work, ".env"), vars(url))
				case "-env file":
					file := filepath.Join(t.TempDir(), "goose.env")
					writeEnv(file, vars(url))
					if tool == "goose" {
						args = append([]string{"-env", file}, args...)
					} else {
						args = append([]string{"--env", file}, args...)
					}
				}
				if tool == "goose" {
					runGoose(t, work, env, args...)
					return
				}
				if code, out, errOut := runCLI(t, env, args...); code != 0 {
					t.Fatalf("shiplock %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
				}
			}
			dbs := fourWays(newDB, run, "2")
			byGoose := dbs["goose"]
			delete(dbs, "goose")

			dump := func(url string) string {
				return testdb.PgDump(t, url, "--no-owner", "--no-privileges", "--exclude-table=migr.app_versions_shiplock", "--exclude-table-data="+table)
			}
			want, wantRows := dump(byGoose), versionRows(t, byGoose, table)
			if wantRows != "[0 1 2 3 4]" || strings.Contains(want, "goose_db_version") {
				t.Fatalf("goose did not use its settings: rows %s\n%s", wantRows, want)
			}
			for name, url := range dbs {
				if got := dump(url); got != want {
					t.Errorf("%s: dump differs from goose's:\n--- goose\n%s\n--- %s\n%s", name, want, name, got)
				}
				if got := versionRows(t, url, table); got != wantRows {
					t.Errorf("%s: rows %s; goose's %s", name, got, wantRows)
				}
			}
			// shiplock's readers find goose's table the same way.
			run("shiplock", byGoose, "await", "--version", "4", "--timeout", "0")
			run("shiplock", byGoose, "status", "--exit-code")
		})
	}
}

// fourWays migrates four new databases: by goose alone, by shiplock alone,
// by goose up to half then shiplock, by shiplock up to half then goose.
func fourWays(newDB func() string, run func(tool, db string, args ...string), half string) map[string]string {
	dbs := map[string]string{}
	for _, way := range [][2]string{{"goose", ""}, {"shiplock", ""}, {"goose", "shiplock"}, {"shiplock", "goose"}} {
		db := newDB()
		if way[1] == "" {
			run(way[0], db, "up")
			dbs[way[0]] = db
			continue
		}
		if way[0] == "goose" {
			run("goose", db, "up-to", half)
		} else {
			run("shiplock", db, "up", "--to", half)
		}
		run(way[1], db, "up")
		dbs[way[0]+" then "+way[1]] = db
	}
	return dbs
}

// versionRows are the applied versions in the version table, in id order.
func versionRows(t *testing.T, url, table string) string {
	t.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows string
	if err := db.QueryRow("SELECT '[' || string_agg(version_id::text, ' ' ORDER BY id) || ']' FROM " + table + " WHERE is_applied").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestGooseEnvDifferentialSQLite: GOOSE_DRIVER=sqlite3 with a file path
// in GOOSE_DBSTRING and a mixed-case GOOSE_TABLE, for goose's CLI and for
// shiplock: the same schema (as SQLite keeps its text) and version rows,
// alone and each continuing the other.
func TestGooseEnvDifferentialSQLite(t *testing.T) {
	migrations := writeDir(t, map[string]string{
		"00001_a.sql": "-- +goose Up\nCREATE TABLE a (id integer PRIMARY KEY);\n-- +goose Down\nDROP TABLE a;\n",
		"00002_b.sql": "-- +goose Up\nCREATE TABLE b (id integer PRIMARY KEY, a_id integer REFERENCES a (id));\n-- +goose Down\nDROP TABLE b;\n",
		"00003_c.sql": "-- +goose Up\nCREATE INDEX b_a ON b (a_id);\n-- +goose Down\nDROP INDEX b_a;\n",
	})
	work := t.TempDir()
	t.Chdir(work)
	run := func(tool, path string, args ...string) {
		t.Helper()
		env := map[string]string{"GOOSE_DRIVER": "sqlite3", "GOOSE_DBSTRING": path, "GOOSE_MIGRATION_DIR": migrations, "GOOSE_TABLE": "AppVersions"}
		if tool == "goose" {
			runGoose(t, work, env, args...)
			return
		}
		if code, out, errOut := runCLI(t, env, args...); code != 0 {
			t.Fatalf("shiplock %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
	}
	newDB := func() string { return filepath.Join(t.TempDir(), "app.db") }
	schema := func(path string) string {
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var s, rows string
		if err := db.QueryRow(`SELECT group_concat(type || ' ' || name || ': ' || coalesce(sql, ''), char(10)) FROM
			(SELECT * FROM sqlite_master WHERE name NOT IN ('AppVersions_shiplock', 'sqlite_autoindex_AppVersions_shiplock_1') ORDER BY type, name)`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow(`SELECT '[' || group_concat(version_id, ' ') || ']' FROM (SELECT version_id FROM AppVersions WHERE is_applied ORDER BY id)`).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		return s + "\nrows " + rows
	}
	dbs := fourWays(newDB, run, "1")
	want := schema(dbs["goose"])
	delete(dbs, "goose")
	if !strings.Contains(want, "CREATE TABLE AppVersions") || !strings.HasSuffix(want, "rows [0 1 2 3]") {
		t.Fatalf("goose did not use its settings:\n%s", want)
	}
	for name, path := range dbs {
		if got := schema(path); got != want {
			t.Errorf("%s differs from goose:\n--- goose\n%s\n--- %s\n%s", name, want, name, got)
		}
	}
}

// TestGooseEnvDifferentialMySQL: GOOSE_DRIVER=mysql with go-sql-driver's
// DSN in GOOSE_DBSTRING and a mixed-case GOOSE_TABLE, for goose's CLI and
// for shiplock, on MariaDB: the same tables (SHOW CREATE TABLE), data and
// version rows, alone and each continuing the other.
func TestGooseEnvDifferentialMySQL(t *testing.T) {
	migrations := writeDir(t, map[string]string{
		"00001_a.sql": "-- +goose Up\nCREATE TABLE a (id int PRIMARY KEY, name varchar(20));\nINSERT INTO a VALUES (1, 'one');\n-- +goose Down\nDROP TABLE a;\n",
		"00002_b.sql": "-- +goose Up\nCREATE TABLE b (id int PRIMARY KEY, a_id int, FOREIGN KEY (a_id) REFERENCES a (id));\n-- +goose Down\nDROP TABLE b;\n",
		"00003_c.sql": "-- +goose Up\nINSERT INTO b VALUES (1, 1);\nUPDATE a SET name = 'uno';\n-- +goose Down\nDELETE FROM b;\n",
		"00004_d.sql": "-- +goose Up\nCREATE INDEX a_name ON a (name);\n-- +goose Down\nDROP INDEX a_name ON a;\n",
	})
	work := t.TempDir()
	dsn := func(u string) string {
		p, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		return p.User.String() + "@tcp(" + p.Host + ")" + p.Path
	}
	run := func(tool, u string, args ...string) {
		t.Helper()
		env := map[string]string{"GOOSE_DRIVER": "mysql", "GOOSE_DBSTRING": dsn(u), "GOOSE_MIGRATION_DIR": migrations, "GOOSE_TABLE": "AppVersions"}
		if tool == "goose" {
			runGoose(t, work, env, args...)
			return
		}
		if code, out, errOut := runCLI(t, env, append([]string{"--env", "none"}, args...)...); code != 0 {
			t.Fatalf("shiplock %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
	}
	newDB := func() string { return testdb.MySQL(t) }
	dump := func(u string) string {
		db := openMySQLTest(t, u)
		var b strings.Builder
		tables, err := db.Query("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name <> 'AppVersions_shiplock' ORDER BY table_name")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for tables.Next() {
			var n string
			if err := tables.Scan(&n); err != nil {
				t.Fatal(err)
			}
			names = append(names, n)
		}
		tables.Close()
		for _, n := range names {
			var name, create string
			if err := db.QueryRow("SHOW CREATE TABLE `"+n+"`").Scan(&name, &create); err != nil {
				t.Fatal(err)
			}
			b.WriteString(create + "\n")
		}
		for _, q := range []string{
			"SELECT GROUP_CONCAT(version_id ORDER BY id SEPARATOR ' ') FROM AppVersions WHERE is_applied",
			"SELECT GROUP_CONCAT(CONCAT(id, '=', name) ORDER BY id) FROM a",
			"SELECT GROUP_CONCAT(CONCAT(id, '>', a_id) ORDER BY id) FROM b",
		} {
			var s sql.NullString
			if err := db.QueryRow(q).Scan(&s); err != nil {
				t.Fatal(err)
			}
			b.WriteString(s.String + "\n")
		}
		return b.String()
	}
	dbs := fourWays(newDB, run, "2")
	want := dump(dbs["goose"])
	delete(dbs, "goose")
	if !strings.Contains(want, "CREATE TABLE `AppVersions`") || !strings.Contains(want, "\n0 1 2 3 4\n1=uno\n1>1\n") {
		t.Fatalf("goose did not use its settings:\n%s", want)
	}
	for name, u := range dbs {
		if got := dump(u); got != want {
			t.Errorf("%s differs from goose:\n--- goose\n%s\n--- %s\n%s", name, want, name, got)
		}
	}
}
