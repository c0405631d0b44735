package e2e

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shiplock/shiplock/dialect/mysql"
	"github.com/shiplock/shiplock/internal/testdb"
)

// TestMySQLPasswordNeverPrinted is TestPasswordNeverPrinted on MariaDB: a
// user whose password holds '@', ':' and '/' (which go-sql-driver's DSN
// takes unencoded), given as a DSN, a mysql:// URL, goose's DRIVER
// DBSTRING form and MYSQL_PWD, through success and every failure path;
// the password appears in no output, log format or termination log.
func TestMySQLPasswordNeverPrinted(t *testing.T) {
	admin, err := url.Parse(testdb.MySQL(t))
	if err != nil {
		t.Fatal(err)
	}
	dbName := strings.TrimPrefix(admin.Path, "/")
	user := "c" + dbName[max(0, len(dbName)-20):] // user names: 32 characters at most on MariaDB
	canary := "My@Canary:p/w0rd-" + dbName[len(dbName)-6:]
	spellings := []string{canary, url.QueryEscape(canary), url.PathEscape(canary), "My@Canary", "p/w0rd-"}

	cfg, err := mysql.ParseURL(admin.String())
	if err != nil {
		t.Fatal(err)
	}
	adminDB := mysql.Open(cfg)
	defer adminDB.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	quoted := "'" + user + "'@'%'"
	for _, q := range []string{
		"CREATE USER " + quoted + " IDENTIFIED BY '" + canary + "'",
		"GRANT ALL ON `" + dbName + "`.* TO " + quoted,
	} {
		if _, err := adminDB.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", strings.ReplaceAll(q, canary, "xxxxx"), err)
		}
	}
	t.Cleanup(func() { adminDB.Exec("DROP USER IF EXISTS " + quoted) })

	dir := writeMigrations(t, map[string]string{
		"00001_a.sql": "-- +goose Up\nCREATE TABLE a (id int);\nINSERT INTO a VALUES (1);\n-- +goose Down\nDROP TABLE a;\n",
		"00002_b.sql": "-- +goose Up\nINSERT INTO a VALUES (2);\n-- +goose Down\nDELETE FROM a WHERE id = 2;\n",
	})
	broken := writeMigrations(t, map[string]string{
		"00001_a.sql": "-- +goose Up\nSELECT * FROM missing_table;\n",
	})
	// plan prints the SQL: the password as a MySQL literal.
	secretSQL := writeMigrations(t, map[string]string{
		"00001_a.sql": "-- +goose Up\nALTER USER " + quoted + " IDENTIFIED BY '" + canary + "';\n",
	})
	dsn := user + ":" + canary + "@tcp(" + admin.Host + ")/" + dbName
	goodURL := "mysql://" + url.UserPassword(user, canary).String() + "@" + admin.Host + "/" + dbName
	wrongDSN := user + "x:" + canary + "@tcp(" + admin.Host + ")/" + dbName
	deadDSN := user + ":" + canary + "@tcp(127.0.0.1:1)/" + dbName

	type run struct {
		name string
		env  []string
		args []string
		want int
	}
	var runs []run
	for _, format := range []string{"json", "text"} {
		f := []string{"--log-format", format, "--env", "none"}
		runs = append(runs,
			run{"up, DSN", []string{"DATABASE_URL=" + dsn}, append([]string{"up", "--dir", dir, "--to", "1"}, f...), 0},
			run{"up, goose's form", nil, append([]string{"mysql", dsn, "up", "--dir", dir}, f...), 0},
			run{"status, URL", []string{"DATABASE_URL=" + goodURL}, append([]string{"status", "--dir", dir, "-o", "json"}, f...), 0},
			run{"verify, MYSQL_PWD", []string{"DATABASE_URL=mysql://" + user + "@" + admin.Host + "/" + dbName, "MYSQL_PWD=" + canary}, append([]string{"verify", "--dir", dir}, f...), 0},
			run{"env, GOOSE_DBSTRING", []string{"GOOSE_DRIVER=mysql", "GOOSE_DBSTRING=" + dsn}, append([]string{"env"}, f...), 0},
			run{"down", []string{"DATABASE_URL=" + dsn}, append([]string{"down", "--dir", dir, "--to", "0", "-o", "json"}, f...), 0},
			run{"plan with a password literal", []string{"DATABASE_URL=" + dsn}, append([]string{"plan", "--dir", secretSQL}, f...), 0},
			run{"wrong user", []string{"DATABASE_URL=" + wrongDSN}, append([]string{"up", "--dir", dir}, f...), 5},
			run{"unreachable", []string{"DATABASE_URL=" + deadDSN}, append([]string{"up", "--dir", dir, "--wait-timeout", "200ms"}, f...), 6},
			run{"sql error", []string{"DATABASE_URL=" + dsn}, append([]string{"up", "--dir", broken}, f...), 1},
			run{"bad dsn", []string{"DATABASE_URL=" + strings.TrimSuffix(dsn, "/"+dbName)}, append([]string{"--driver", "mysql", "up", "--dir", dir}, f...), 2},
			run{"unencoded URL", []string{"DATABASE_URL=mysql://" + user + ":" + canary + "@" + admin.Host + "/" + dbName}, append([]string{"up", "--dir", dir}, f...), 2},
		)
	}
	for _, r := range runs {
		term := filepath.Join(t.TempDir(), "termination-log")
		cmd := exec.Command(shiplockBin, r.args...)
		cmd.Env = append(os.Environ(), append(r.env, "SHIPLOCK_TERMINATION_LOG="+term)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		}
		if code != r.want {
			t.Errorf("%s: exit %d, want %d\n%s", r.name, code, r.want, out.String())
		}
		termLog, _ := os.ReadFile(term)
		for _, s := range spellings {
			if strings.Contains(out.String(), s) {
				t.Errorf("%s: the password (%q) appears in the output:\n%s", r.name, s, out.String())
			}
			if strings.Contains(string(termLog), s) {
				t.Errorf("%s: the password appears in the termination log: %s", r.name, termLog)
			}
		}
		if strings.HasPrefix(r.name, "plan with") && !strings.Contains(out.String(), "IDENTIFIED BY 'xxxxx'") {
			t.Errorf("%s: plan does not show the masked statement:\n%s", r.name, out.String())
		}
	}
}
