package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiplock/shiplock/exitcode"
	"github.com/shiplock/shiplock/internal/testdb"
)

// dialectDatabases are a fresh empty database of each dialect shiplock
// runs, as --database-url values.
func dialectDatabases(t *testing.T) []struct{ name, url string } {
	t.Helper()
	return []struct{ name, url string }{
		{"sqlite", "sqlite://" + testdb.SQLite(t)},
		{"postgres", testdb.Postgres(t)},
		{"mysql", testdb.MySQL(t)},
	}
}

// portableFiles are migrations every dialect runs alike: a file with DDL
// (on MySQL, statement by statement) and a data-only file.
var portableFiles = map[string]string{
	"00001_create.sql": "-- +goose Up\nCREATE TABLE t (id int PRIMARY KEY);\nINSERT INTO t VALUES (1);\n-- +goose Down\nDROP TABLE t;\n",
	"00002_data.sql":   "-- +goose Up\nINSERT INTO t VALUES (2);\n-- +goose Down\nDELETE FROM t WHERE id = 2;\n",
}

// TestCommandsEveryDialect runs every command that reads or changes the
// database, in one sequence, on SQLite, PostgreSQL and MariaDB: the same
// exit codes and the same output where the output does not depend on the
// database.
func TestCommandsEveryDialect(t *testing.T) {
	for _, db := range dialectDatabases(t) {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			dir := writeDir(t, portableFiles)
			cli := func(want exitcode.Code, args ...string) (string, string) {
				t.Helper()
				code, out, errOut := runCLI(t, nil, append([]string{"--env", "none", "--dir", dir, "--database-url", db.url}, args...)...)
				if code != int(want) {
					t.Fatalf("%v: exit %d, want %d\n%s%s", args, code, want, out, errOut)
				}
				return out, errOut
			}
			contains := func(what, text string, wants ...string) {
				t.Helper()
				for _, w := range wants {
					if !strings.Contains(text, w) {
						t.Errorf("%s: no %q in\n%s", what, w, text)
					}
				}
			}
			out, errOut := cli(exitcode.OK, "wait")
			contains("wait", out+errOut, "database ready")
			cli(exitcode.Pending, "status", "--exit-code")
			cli(exitcode.Pending, "check", "--version", "latest")
			out, _ = cli(exitcode.OK, "plan")
			contains("plan", out, "-- up 1 00001_create.sql", "-- up 2 00002_data.sql (in a transaction)", "INSERT INTO t VALUES (2);")
			if db.name == "mysql" {
				contains("plan", out, "00001_create.sql (statement by statement, each recorded: its DDL commits by itself)")
			} else {
				contains("plan", out, "00001_create.sql (in a transaction)")
			}
			cli(exitcode.OK, "up", "--to", "1")
			out, _ = cli(exitcode.OK, "version")
			contains("version", out, "1")
			cli(exitcode.OK, "up")

			out, _ = cli(exitcode.OK, "status", "-o", "json")
			var st struct {
				Current  int64 `json:"current"`
				Pending  int   `json:"pending"`
				Versions []struct {
					State string `json:"state"`
				} `json:"versions"`
			}
			if err := json.Unmarshal([]byte(out), &st); err != nil || st.Current != 2 || st.Pending != 0 || len(st.Versions) != 2 || st.Versions[1].State != "applied" {
				t.Errorf("status -o json: %+v, %v\n%s", st, err, out)
			}
			_, errOut = cli(exitcode.OK, "status", "-o", "goose")
			contains("status -o goose", errOut, "-- 00001_create.sql", "-- 00002_data.sql")
			out, _ = cli(exitcode.OK, "verify")
			contains("verify", out, "2 applied migrations match their files")
			out, _ = cli(exitcode.OK, "plan")
			contains("plan", out, "-- nothing to do")
			cli(exitcode.OK, "await", "--timeout", "1m")
			cli(exitcode.OK, "check")

			// An applied file edited: verify says so (exit 4) until repair
			// accepts its new checksum.
			if err := os.WriteFile(filepath.Join(dir, "00002_data.sql"), []byte(portableFiles["00002_data.sql"]+"-- edited\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			cli(exitcode.Integrity, "verify")
			cli(exitcode.OK, "repair", "--accept-checksum", "2")
			cli(exitcode.OK, "verify")

			cli(exitcode.OK, "down")
			out, _ = cli(exitcode.OK, "version")
			contains("version after down", out, "1")
			cli(exitcode.OK, "redo")
			cli(exitcode.OK, "down", "--to", "0")
			out, _ = cli(exitcode.OK, "version")
			contains("version after down --to 0", out, "0")
			cli(exitcode.OK, "up")
			out, _ = cli(exitcode.OK, "status")
			contains("status", out, "current version 2")
		})
	}
}
