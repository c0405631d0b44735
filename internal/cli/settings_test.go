package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiplock/shiplock/exitcode"
)

// envTable runs shiplock env and returns its rows as "NAME VALUE SOURCE"
// lines with single spaces.
func envTable(t *testing.T, env map[string]string, args ...string) map[string]string {
	t.Helper()
	code, out, errOut := runCLI(t, env, append(args, "env")...)
	if code != 0 {
		t.Fatalf("shiplock env: exit %d\n%s", code, errOut)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		name, rest, _ := strings.Cut(line, " ")
		rows[name] = strings.Join(strings.Fields(rest), " ")
	}
	return rows
}

// TestSettingsPrecedence: flags > shiplock's variables > GOOSE_* > the
// .env file > defaults, for the directory, the table and the database, as
// shiplock env reports them.
func TestSettingsPrecedence(t *testing.T) {
	dir := t.TempDir()
	dotenv := filepath.Join(dir, "goose.env")
	if err := os.WriteFile(dotenv, []byte("GOOSE_DRIVER=postgres\nGOOSE_DBSTRING=postgres://envfile@h/db\nGOOSE_MIGRATION_DIR=envfile_dir\nGOOSE_TABLE=envfile.versions\nDATABASE_URL=postgres://ignored@h/db\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := []string{"--env", dotenv}
	for _, tt := range []struct {
		name string
		env  map[string]string
		args []string
		want map[string]string
	}{
		{"defaults", nil, []string{"--env", "none"}, map[string]string{
			"dir": "migrations default", "table": "goose_db_version default", "records": "shiplock_versions shiplock's own table, beside goose_db_version",
		}},
		{".env file", nil, file, map[string]string{
			"driver": "postgres GOOSE_DRIVER in " + dotenv, "dbstring": "postgres://envfile@h/db GOOSE_DBSTRING in " + dotenv,
			"dir": "envfile_dir GOOSE_MIGRATION_DIR in " + dotenv, "table": "envfile.versions GOOSE_TABLE in " + dotenv,
			"records": "envfile.versions_shiplock shiplock's own table, beside envfile.versions",
		}},
		{"GOOSE_* over .env", map[string]string{"GOOSE_DBSTRING": "postgres://gooseenv@h/db", "GOOSE_MIGRATION_DIR": "goose_dir", "GOOSE_TABLE": "goose_versions"}, file, map[string]string{
			"dbstring": "postgres://gooseenv@h/db GOOSE_DBSTRING", "dir": "goose_dir GOOSE_MIGRATION_DIR", "table": "goose_versions GOOSE_TABLE",
		}},
		{"shiplock's variables over GOOSE_*", map[string]string{"DATABASE_URL": "postgres://ours@h/db", "GOOSE_DBSTRING": "postgres://gooseenv@h/db", "SHIPLOCK_DIR": "our_dir", "GOOSE_MIGRATION_DIR": "goose_dir", "SHIPLOCK_TABLE": "our_versions", "GOOSE_TABLE": "goose_versions"}, file, map[string]string{
			"driver": "postgres from the database setting", "dbstring": "postgres://ours@h/db DATABASE_URL", "dir": "our_dir SHIPLOCK_DIR", "table": "our_versions SHIPLOCK_TABLE",
		}},
		{"flags over everything", map[string]string{"DATABASE_URL": "postgres://ours@h/db", "SHIPLOCK_DIR": "our_dir", "SHIPLOCK_TABLE": "our_versions"},
			append(file, "--database-url", "postgres://flag@h/db", "--dir", "flag_dir", "--table", `"Flag"."V"`), map[string]string{
				"dbstring": "postgres://flag@h/db --database-url", "dir": "flag_dir --dir", "table": `"Flag"."V" --table`, "records": `"Flag"."V_shiplock" shiplock's own table, beside "Flag"."V"`,
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rows := envTable(t, tt.env, tt.args...)
			for k, want := range tt.want {
				if rows[k] != want {
					t.Errorf("%s = %q; want %q", k, rows[k], want)
				}
			}
		})
	}
}

// TestDefaultEnvFile: like goose, .env in the working directory is read
// when present and --env is not given; --env none ignores it; a missing
// --env file is an error (exit 2), a missing default one is not.
func TestDefaultEnvFile(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if rows := envTable(t, nil); rows["env-file"] != "no .env here" || rows["table"] != "goose_db_version default" {
		t.Fatalf("without .env: %q", rows)
	}
	if err := os.WriteFile(".env", []byte("# goose settings\nexport GOOSE_TABLE=\"app_versions\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if rows := envTable(t, nil); rows["table"] != "app_versions GOOSE_TABLE in .env" || rows["env-file"] != ".env default" {
		t.Fatalf("with .env: %q", rows)
	}
	if rows := envTable(t, nil, "--env", "none"); rows["table"] != "goose_db_version default" || rows["env-file"] != "--env none" {
		t.Fatalf("with --env none: %q", rows)
	}
	code, _, errOut := runCLI(t, nil, "--env", "missing.env", "env")
	if code != int(exitcode.Usage) || !strings.Contains(errOut, "--env missing.env: no such file or directory") {
		t.Fatalf("--env missing.env: exit %d, %s", code, errOut)
	}
}

// TestEnvNeverPrintsPasswords: a canary password given in every way a
// goose or shiplock user gives one never reaches env's output.
func TestEnvNeverPrintsPasswords(t *testing.T) {
	const canary = "Canary-Pw-9f3e"
	dir := t.TempDir()
	dotenv := filepath.Join(dir, ".env")
	if err := os.WriteFile(dotenv, []byte("GOOSE_DBSTRING=\"host=db user=app password="+canary+" dbname=app\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	spaceEnv := filepath.Join(dir, "space.env")
	if err := os.WriteFile(spaceEnv, []byte("GOOSE_DRIVER=postgres\nGOOSE_DBSTRING=\"postgres://app:"+canary+" 9@db/app\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"DATABASE_URL", map[string]string{"DATABASE_URL": "postgres://app:" + canary + "@db/app"}, nil},
		{"GOOSE_DBSTRING URL", map[string]string{"GOOSE_DRIVER": "postgres", "GOOSE_DBSTRING": "postgres://app:" + canary + "@db/app?sslmode=disable"}, nil},
		{"GOOSE_DBSTRING key=value", map[string]string{"GOOSE_DRIVER": "pgx", "GOOSE_DBSTRING": "user=app password=" + canary + " host=db"}, nil},
		{".env key=value", nil, []string{"--env", dotenv}},
		{"PGPASSWORD", map[string]string{"PGHOST": "db", "PGPASSWORD": canary}, nil},
		{"flag", nil, []string{"--database-url", "postgresql://app:" + canary + "@db:5432/app"}},
		{"json", map[string]string{"GOOSE_DBSTRING": "postgres://app:" + canary + "@db/app"}, []string{"--env", "none", "env", "-o", "json"}},
		// An unencoded space in the password: the URL is not one word.
		{"DATABASE_URL space", map[string]string{"DATABASE_URL": "postgres://app:Pa " + canary + "@db/app"}, nil},
		{"GOOSE_DBSTRING space", map[string]string{"GOOSE_DRIVER": "postgres", "GOOSE_DBSTRING": "postgres://app:" + canary + " 99@db/app"}, []string{"--env", "none"}},
		{".env space", nil, []string{"--env", spaceEnv}},
		{"json space", map[string]string{"DATABASE_URL": "postgres://app:" + canary + " x@db/app"}, []string{"--env", "none", "env", "-o", "json"}},
		// MySQL: a URL, go-sql-driver's DSN with '@', ':' and '/' in the
		// password, goose's DRIVER DBSTRING form and MYSQL_PWD.
		{"mysql url", map[string]string{"DATABASE_URL": "mysql://app:" + canary + "@db:3306/app"}, nil},
		{"mysql dsn", map[string]string{"GOOSE_DRIVER": "mysql", "GOOSE_DBSTRING": "app:p@s:s/" + canary + "@tcp(db:3306)/app?parseTime=true"}, []string{"--env", "none"}},
		{"mysql dsn, goose's form", nil, []string{"mysql", "app:p@s:s/" + canary + "@tcp(db:3306)/app"}},
		{"mysql dsn without a driver", map[string]string{"DATABASE_URL": "app:" + canary + "@tcp(db:3306)/app"}, nil},
		{"mysql dsn space", map[string]string{"DATABASE_URL": "app:Pa " + canary + "@tcp(db:3306)/app"}, nil},
		{"MYSQL_PWD", map[string]string{"DATABASE_URL": "mysql://app@db/app", "MYSQL_PWD": canary}, nil},
		{"mysql json", map[string]string{"DATABASE_URL": "app:x@" + canary + "@tcp(db)/app"}, []string{"--env", "none", "env", "-o", "json"}},
		// Strings that do not parse: the error row does not repeat them.
		{"mysql url not encoded", map[string]string{"DATABASE_URL": "mysql://app:p@s/s" + canary + "@db/app"}, nil},
		{"mysql dsn without a database", map[string]string{"GOOSE_DRIVER": "mysql", "GOOSE_DBSTRING": "app:" + canary + "@tcp(db:3306)"}, []string{"--env", "none"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if len(args) == 0 || args[len(args)-1] != "json" {
				args = append(args, "env")
			}
			code, out, errOut := runCLI(t, tc.env, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if strings.Contains(out+errOut, canary) {
				t.Fatalf("the password is printed:\n%s%s", out, errOut)
			}
			if !strings.Contains(out, "db") {
				t.Fatalf("the database is not shown:\n%s", out)
			}
		})
	}
}

// TestGooseDriverUnsupported: a goose pipeline for a database shiplock
// does not migrate fails at once, saying so (exit 2), on every command
// that needs the database and in env.
func TestGooseDriverUnsupported(t *testing.T) {
	env := map[string]string{"GOOSE_DRIVER": "clickhouse", "GOOSE_DBSTRING": "tcp://127.0.0.1:9000"}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "00001_a.sql"), []byte("-- +goose Up\nSELECT 1;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"up", "status", "await"} {
		code, _, errOut := runCLI(t, env, "--env", "none", "--dir", dir, cmd)
		if code != int(exitcode.Usage) || !strings.Contains(errOut, `GOOSE_DRIVER "clickhouse" is not supported: shiplock migrates PostgreSQL, MySQL/MariaDB and SQLite`) {
			t.Errorf("%s: exit %d, %s", cmd, code, errOut)
		}
	}
	if rows := envTable(t, env, "--env", "none"); !strings.Contains(rows["driver"], "is not supported") {
		t.Errorf("env: driver = %q", rows["driver"])
	}
}

// TestBadTableBeforeDatabase: an invalid table name is a usage error
// naming its source, before any connection (the database here does not
// exist: a connection attempt would be a different error).
func TestBadTableBeforeDatabase(t *testing.T) {
	env := map[string]string{"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none?connect_timeout=1"}
	for _, tc := range []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"--table", "versions; DROP TABLE users"}, "", `--table: table name "versions; DROP TABLE users": ';'`},
		{nil, "a.b.c", `GOOSE_TABLE: table name "a.b.c": want NAME or SCHEMA.NAME`},
	} {
		e := map[string]string{}
		for k, v := range env {
			e[k] = v
		}
		if tc.env != "" {
			e["GOOSE_TABLE"] = tc.env
		}
		for _, cmd := range []string{"up", "status", "verify", "await", "repair", "env"} {
			code, _, errOut := runCLI(t, e, append(append([]string{"--env", "none"}, tc.args...), cmd)...)
			if code != int(exitcode.Usage) || !strings.Contains(errOut, tc.want) {
				t.Errorf("%s: exit %d, %s; want exit 2 and %s", cmd, code, errOut, tc.want)
			}
		}
	}
}

// TestEnvRowsSayWhatIsWrong: a default .env that cannot be parsed is
// shown as ignored with the reason (not "no .env here"); an error about
// the database string is on the dbstring row, not the driver's; with
// only GOOSE_DRIVER set the error names GOOSE_DBSTRING.
func TestEnvRowsSayWhatIsWrong(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.WriteFile(".env", []byte("GOOSE_DBSTRING=\"unterminated\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rows := envTable(t, map[string]string{"DATABASE_URL": "sqlite://x.db"})
	if !strings.Contains(rows["env-file"], ".env ignored, as goose does: it cannot be read: ") || strings.Contains(rows["env-file"], "no .env here") {
		t.Errorf("env-file: %q", rows["env-file"])
	}

	env := map[string]string{"GOOSE_DRIVER": "postgres"}
	rows = envTable(t, env, "--env", "none")
	if !strings.Contains(rows["dbstring"], "GOOSE_DRIVER is set, but GOOSE_DBSTRING is not") || strings.Contains(rows["driver"], "error") {
		t.Errorf("dbstring %q, driver %q", rows["dbstring"], rows["driver"])
	}
	code, _, errOut := runCLI(t, env, "--env", "none", "--dir", t.TempDir(), "status")
	if code != int(exitcode.Usage) || !strings.Contains(errOut, "set GOOSE_DBSTRING") {
		t.Errorf("status: exit %d %s", code, errOut)
	}
	// A malformed database string: its row, not the driver's.
	rows = envTable(t, map[string]string{"GOOSE_DRIVER": "postgres", "GOOSE_DBSTRING": "postgres://h:notaport/db"}, "--env", "none")
	if !strings.Contains(rows["dbstring"], "error") || strings.Contains(rows["driver"], "error") {
		t.Errorf("dbstring %q, driver %q", rows["dbstring"], rows["driver"])
	}
}
