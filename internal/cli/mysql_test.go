package cli

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shiplock/shiplock/dialect/mysql"
	"github.com/shiplock/shiplock/exitcode"
	"github.com/shiplock/shiplock/internal/testdb"
)

// openMySQLTest opens the mysql:// URL u for the test's own queries.
func openMySQLTest(t *testing.T, u string) *sql.DB {
	t.Helper()
	cfg, err := mysql.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	db := mysql.Open(cfg)
	t.Cleanup(func() { db.Close() })
	return db
}

// TestWaitMySQLExitCodes: wait's exit codes on MariaDB come from the
// dialect's classes: a wrong password (1045) and an unknown database
// (1049) exit 5 at once, as on PostgreSQL; a refused port is retried until
// --wait-timeout and exits 6. No output repeats the password.
func TestWaitMySQLExitCodes(t *testing.T) {
	const canary = "Canary-My-Pw-4e2a"
	good, err := url.Parse(testdb.MySQL(t))
	if err != nil {
		t.Fatal(err)
	}
	wrongPassword := *good
	wrongPassword.User = url.UserPassword(good.User.Username(), canary)
	// MYSQL_PWD is read only when the URL names no password.
	noPassword := *good
	noPassword.User = url.User(good.User.Username())
	unknownDB := *good
	unknownDB.Path = "/no_such_database_here"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	dsn := good.User.Username() + ":" + canary + "@tcp(" + good.Host + ")" + good.Path
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want exitcode.Code
		msg  string
	}{
		{"wrong password, url", []string{"--database-url", wrongPassword.String()}, nil, exitcode.Auth, "1045"},
		{"wrong password, dsn", []string{"--database-url", dsn}, nil, exitcode.Auth, "1045"},
		{"wrong password, MYSQL_PWD", []string{"--database-url", noPassword.String()}, map[string]string{"MYSQL_PWD": canary}, exitcode.Auth, "1045"},
		{"unknown database", []string{"--database-url", unknownDB.String()}, nil, exitcode.Auth, "1049"},
		{"refused", []string{"--database-url", "mysql://root:" + canary + "@" + closed + "/db", "--wait-timeout", "1s"}, nil, exitcode.Unavailable, "attempts"},
		{"ready", []string{"--database-url", good.String()}, nil, exitcode.OK, "database ready"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tc.env, append([]string{"--env", "none"}, append(tc.args, "wait")...)...)
			if code != int(tc.want) || !strings.Contains(out+errOut, tc.msg) {
				t.Fatalf("exit %d, want %d and %q:\n%s%s", code, tc.want, tc.msg, out, errOut)
			}
			if strings.Contains(out+errOut, canary) {
				t.Fatalf("the password is printed:\n%s%s", out, errOut)
			}
		})
	}
}

// cliOn runs the CLI on dir and database u; it returns the exit code
// and stdout followed by stderr.
func cliOn(t *testing.T, dir, u string) func(args ...string) (int, string) {
	return func(args ...string) (int, string) {
		code, out, errOut := runCLI(t, nil, append([]string{"--env", "none", "--dir", dir, "--database-url", u}, args...)...)
		return code, out + errOut
	}
}

// TestMySQLStatementByStatement: on MariaDB a file with DDL runs statement
// by statement with progress records: a failure at its second statement
// leaves the first (committed by the server) recorded, status and verify
// report the interrupted migration, and repair --resume runs the rest once
// the cause is fixed; --tx-mode all refuses such a plan before running
// anything (exit 3, naming file and line); plan --locks is PostgreSQL's
// (exit 2); lint's help, lint given the database and up --check-safety say
// its rules are PostgreSQL's.
func TestMySQLStatementByStatement(t *testing.T) {
	u := testdb.MySQL(t)
	db := openMySQLTest(t, u)
	dir := writeDir(t, map[string]string{
		"00001_two_tables.sql": "-- +goose Up\nCREATE TABLE a (id int);\nINSERT INTO missing VALUES (1);\nCREATE TABLE b (id int);\n-- +goose Down\nDROP TABLE b;\nDROP TABLE a;\n",
	})
	cli := cliOn(t, dir, u)

	code, out := cli("up", "--tx-mode", "all")
	if code != int(exitcode.BadFile) || !strings.Contains(out, "00001_two_tables.sql:2") || !strings.Contains(out, "transaction mode all") {
		t.Fatalf("up --tx-mode all: exit %d\n%s", code, out)
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'a'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("table a after a refused plan: %d, %v", n, err)
	}

	code, out = cli("up")
	if code != int(exitcode.Failed) || !strings.Contains(out, "missing") {
		t.Fatalf("up: exit %d, want 1\n%s", code, out)
	}
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'a'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("table a after the failure: %d, %v; the server committed it", n, err)
	}
	code, out = cli("status", "-o", "json")
	if !strings.Contains(out, `"interrupted"`) && !strings.Contains(out, `"failed"`) {
		t.Errorf("status -o json (exit %d) does not report the half-applied migration:\n%s", code, out)
	}
	// Its row's state says it stopped half-way, not merely pending; it
	// still counts as pending.
	if code, out = cli("status"); !regexp.MustCompile(`(?m)^1\s+interrupted\s`).MatchString(out) || !strings.Contains(out, "1 migration pending") {
		t.Errorf("status (exit %d): version 1's state is not 'interrupted', or it no longer counts as pending:\n%s", code, out)
	}
	if code, out = cli("verify"); code == 0 {
		t.Errorf("verify: exit 0 with a half-applied migration\n%s", out)
	}
	// plan says where up stands with it, not only its statements.
	if code, out = cli("plan"); code != 0 || !strings.Contains(out, "-- interrupted: 00001_two_tables.sql: version 1 (run statement by statement) was interrupted while applying, after 1 of 3 statements, next at line 3") {
		t.Errorf("plan: exit %d, no note of the interrupted migration\n%s", code, out)
	}
	// The file has no NO TRANSACTION annotation: status and verify say why
	// it ran statement by statement instead.
	for _, args := range [][]string{{"status"}, {"verify"}, {"status", "-o", "json"}} {
		code, out = cli(args...)
		if strings.Contains(out, "NO TRANSACTION") || !strings.Contains(out, "run statement by statement") {
			t.Errorf("%v (exit %d) misnames the MySQL DDL file:\n%s", args, code, out)
		}
	}

	if _, err := db.Exec("CREATE TABLE missing (id int)"); err != nil {
		t.Fatal(err)
	}
	if code, out = cli("repair", "--resume"); code != 0 {
		t.Fatalf("repair --resume: exit %d\n%s", code, out)
	}
	if code, out = cli("status", "--exit-code"); code != 0 || !strings.Contains(out, "current version 1") {
		t.Fatalf("status after repair: exit %d\n%s", code, out)
	}
	if err := db.QueryRow("SELECT COUNT(*) FROM missing").Scan(&n); err != nil || n != 1 {
		t.Errorf("rows in missing after repair --resume: %d, %v; want the resumed INSERT once", n, err)
	}

	code, out = cli("plan", "--locks", "--shadow-temp")
	if code != int(exitcode.Usage) || !strings.Contains(out, "PostgreSQL migrations only") {
		t.Errorf("plan --locks: exit %d\n%s", code, out)
	}
	code, out = cli("down", "--to", "0")
	if code != 0 {
		t.Fatalf("down --to 0: exit %d\n%s", code, out)
	}
	if code, out = cli("up", "--check-safety", "warn"); code != 0 || !strings.Contains(out, "lint's rules are PostgreSQL's; on mysql") {
		t.Errorf("up --check-safety warn: exit %d, no warning that the rules are PostgreSQL's\n%s", code, out)
	}
	if code, out = cli("lint"); code != 0 || !strings.Contains(out, "lint: lint's rules are PostgreSQL's; on mysql") {
		t.Errorf("lint --database-url mysql://...: exit %d, no warning that the rules are PostgreSQL's\n%s", code, out)
	}
	_, help, _ := runCLI(t, nil, "lint", "--help")
	if !strings.Contains(help, "The rules are PostgreSQL's") {
		t.Errorf("lint --help does not say its rules are PostgreSQL's:\n%s", help)
	}
}

// TestExitMySQLConnectionKilled: the connection of a migration is cut in
// the middle of its statement (KILL CONNECTION on MariaDB): up exits
// retryable (6), and a rerun applies the migration once.
func TestExitMySQLConnectionKilled(t *testing.T) {
	t.Parallel()
	u := testdb.MySQL(t)
	db := openMySQLTest(t, u)
	dir := writeDir(t, map[string]string{
		"00001_sleep.sql": "-- +goose Up\nCREATE TABLE t (id int);\n-- +goose Down\nDROP TABLE t;\n",
		"00002_sleep.sql": "-- +goose Up\nINSERT INTO t VALUES (1);\nSELECT SLEEP(60);\n-- +goose Down\nDELETE FROM t;\n",
	})
	type result struct {
		code int
		out  string
	}
	done := make(chan result, 1)
	go func() {
		code, out, errOut := runCLI(t, nil, "--env", "none", "up", "--dir", dir, "--database-url", u)
		done <- result{code, out + errOut}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		var id int64
		err := db.QueryRowContext(ctx, "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND INFO LIKE 'SELECT SLEEP(60)%' AND ID <> CONNECTION_ID()").Scan(&id)
		if err == nil {
			if _, err := db.ExecContext(ctx, fmt.Sprintf("KILL CONNECTION %d", id)); err != nil {
				t.Fatal(err)
			}
			break
		}
		select {
		case r := <-done:
			t.Fatalf("up ended before its migration slept: exit %d\n%s", r.code, r.out)
		default:
		}
		if !errors.Is(err, sql.ErrNoRows) || ctx.Err() != nil {
			t.Fatalf("find the sleeping migration: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	r := <-done
	if r.code != int(exitcode.Unavailable) || !strings.Contains(r.out, "running the same command again can succeed") {
		t.Fatalf("up with its connection killed: exit %d, want %d\n%s", r.code, exitcode.Unavailable, r.out)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM t").Scan(&n); err != nil || n != 0 {
		t.Fatalf("rows after the killed transaction: %d, %v; want 0 (rolled back)", n, err)
	}
	dir2 := writeDir(t, map[string]string{
		"00001_sleep.sql": "-- +goose Up\nCREATE TABLE t (id int);\n-- +goose Down\nDROP TABLE t;\n",
		"00002_sleep.sql": "-- +goose Up\nINSERT INTO t VALUES (1);\nSELECT SLEEP(0);\n-- +goose Down\nDELETE FROM t;\n",
	})
	if code, out, errOut := runCLI(t, nil, "--env", "none", "up", "--dir", dir2, "--database-url", u); code != 0 {
		t.Fatalf("rerun: exit %d\n%s%s", code, out, errOut)
	}
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM t").Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows after the rerun: %d, %v; want 1", n, err)
	}
}

// TestMySQLOwnTransactionDDLFile: a file with its own START
// TRANSACTION/COMMIT around DDL runs statement by statement with records
// too; status says it ran statement by statement, never NO TRANSACTION.
func TestMySQLOwnTransactionDDLFile(t *testing.T) {
	t.Parallel()
	u := testdb.MySQL(t)
	db := openMySQLTest(t, u)
	dir := writeDir(t, map[string]string{
		"00001_own.sql": "-- +goose Up\nSTART TRANSACTION;\nCREATE TABLE x (id int);\nINSERT INTO missing VALUES (1);\nCOMMIT;\n-- +goose Down\nDROP TABLE x;\n",
	})
	cli := cliOn(t, dir, u)
	if code, out := cli("up"); code != int(exitcode.Failed) {
		t.Fatalf("up: exit %d, want 1\n%s", code, out)
	}
	code, out := cli("status")
	if strings.Contains(out, "NO TRANSACTION") || !strings.Contains(out, "run statement by statement") {
		t.Errorf("status (exit %d) misnames the file:\n%s", code, out)
	}
	if _, err := db.Exec("CREATE TABLE missing (id int)"); err != nil {
		t.Fatal(err)
	}
	if code, out = cli("up"); code != 0 {
		t.Fatalf("rerun: exit %d\n%s", code, out)
	}
}

// TestLockLeaseUnsupported: --lock lease on a dialect without a lease
// lock (MySQL, SQLite) is a usage error (exit 2) before anything runs,
// not a failed migration (exit 1).
func TestLockLeaseUnsupported(t *testing.T) {
	t.Parallel()
	dir := writeDir(t, map[string]string{"00001_a.sql": "-- +goose Up\nCREATE TABLE a (id int);\n-- +goose Down\nDROP TABLE a;\n"})
	for _, u := range []string{testdb.MySQL(t), "sqlite://" + filepath.Join(t.TempDir(), "db.sqlite")} {
		code, out, errOut := runCLI(t, nil, "--env", "none", "--dir", dir, "--database-url", u, "up", "--lock", "lease")
		if code != int(exitcode.Usage) || !strings.Contains(errOut, "no lease lock") {
			t.Errorf("up --lock lease on %s: exit %d, want 2\n%s%s", u[:6], code, out, errOut)
		}
	}
}

// TestMySQLLockTimeoutExit: while another session holds the run's
// GET_LOCK, up waits --lock-timeout, exits 7 (retryable) and applies
// nothing; once the holder releases it, up applies.
func TestMySQLLockTimeoutExit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u := testdb.MySQL(t)
	db := openMySQLTest(t, u)
	dir := writeDir(t, map[string]string{"00001_a.sql": "-- +goose Up\nCREATE TABLE a (id int);\n-- +goose Down\nDROP TABLE a;\n"})
	holder, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if ok, err := (mysql.Dialect{}).TryLock(ctx, holder); err != nil || !ok {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}
	cli := cliOn(t, dir, u)
	if code, out := cli("up", "--lock-timeout", "1s"); code != int(exitcode.Locked) || !strings.Contains(out, "lock not acquired") || !strings.Contains(out, "held by") {
		t.Fatalf("up behind the holder: exit %d, want %d\n%s", code, exitcode.Locked, out)
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'a'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("table a after the lock timeout: %d, %v", n, err)
	}
	if err := (mysql.Dialect{}).Unlock(ctx, holder); err != nil {
		t.Fatal(err)
	}
	if code, out := cli("up", "--lock-timeout", "1s"); code != 0 {
		t.Fatalf("up after the release: exit %d\n%s", code, out)
	}
}

// TestMySQLLockTablesFile: mysqldump writes LOCK TABLES t WRITE; INSERT
// ...; UNLOCK TABLES around each table's rows. Such a file runs statement
// by statement (LOCK TABLES commits by itself), and the progress record
// after LOCK TABLES would fail (1100: shiplock_versions is not among the
// locked tables), leaving the file stuck half-way. So it is refused
// before anything runs, naming the file, the line and the fix; without
// the LOCK/UNLOCK pair the same file applies.
func TestMySQLLockTablesFile(t *testing.T) {
	t.Parallel()
	u := testdb.MySQL(t)
	db := openMySQLTest(t, u)
	dir := writeDir(t, map[string]string{
		"00001_dump.sql": "-- +goose Up\nCREATE TABLE t (id int);\nLOCK TABLES t WRITE;\nINSERT INTO t VALUES (1), (2);\nUNLOCK TABLES;\n-- +goose Down\nDROP TABLE t;\n",
	})
	code, out, errOut := runCLI(t, nil, "--env", "none", "--dir", dir, "--database-url", u, "up")
	if code != int(exitcode.BadFile) || !strings.Contains(errOut, "00001_dump.sql:3: LOCK TABLES") || !strings.Contains(errOut, "remove LOCK TABLES and UNLOCK TABLES") {
		t.Fatalf("up: exit %d, want %d naming 00001_dump.sql:3 and the fix\n%s%s", code, exitcode.BadFile, out, errOut)
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 't'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("table t exists (%d, %v): the refused file ran", n, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "00001_dump.sql"), []byte("-- +goose Up\nCREATE TABLE t (id int);\nINSERT INTO t VALUES (1), (2);\n-- +goose Down\nDROP TABLE t;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, nil, "--env", "none", "--dir", dir, "--database-url", u, "up"); code != 0 {
		t.Fatalf("up without LOCK TABLES: exit %d\n%s%s", code, out, errOut)
	}
	if err := db.QueryRow("SELECT COUNT(*) FROM t").Scan(&n); err != nil || n != 2 {
		t.Fatalf("rows in t: %d, %v; want 2", n, err)
	}
}
