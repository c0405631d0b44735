package cli

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/shiplock/shiplock/exitcode"
	"github.com/shiplock/shiplock/internal/testdb"
)

var lintFiles = map[string]string{
	"00001_users.sql":  "-- +goose Up\nCREATE TABLE users (id bigint PRIMARY KEY, email text);\n-- +goose Down\nDROP TABLE users;\n",
	"00002_index.sql":  "-- +goose Up\nCREATE INDEX users_email ON users (email);\n-- +goose Down\nDROP INDEX users_email;\n",
	"00003_column.sql": "-- +goose Up\nALTER TABLE users ADD COLUMN nick text;\n-- +goose Down\nALTER TABLE users DROP COLUMN nick;\n",
}

// TestLintBaseline: without a baseline every file is new (the index is on
// a new table); with --since 1 the table exists and the plain index is an
// error (exit 3), reported as text, and as a GitHub annotation.
func TestLintBaseline(t *testing.T) {
	dir := writeDir(t, lintFiles)
	code, out := run(context.Background(), "lint", "--dir", dir)
	if code != exitcode.OK || !strings.Contains(out, "0 findings") || !strings.Contains(out, "no baseline: every file is new") {
		t.Errorf("no baseline: exit %v\n%s", code, out)
	}
	code, out = run(context.Background(), "lint", "--dir", dir, "--since", "1")
	if code != exitcode.BadFile || !strings.Contains(out, "00002_index.sql:2: create-index-lock error:") {
		t.Errorf("--since 1: exit %v, want %v\n%s", code, exitcode.BadFile, out)
	}
	code, out = run(context.Background(), "lint", "--dir", dir, "--since", "1", "--fail-on", "none", "-o", "github")
	if code != exitcode.OK || !strings.Contains(out, "::error file="+dir+"/00002_index.sql,line=2,title=shiplock create-index-lock::") {
		t.Errorf("--fail-on none -o github: exit %v\n%s", code, out)
	}
	if code, out := run(context.Background(), "lint", "--dir", dir, "--fail-on", "sometimes"); code != exitcode.Usage {
		t.Errorf("--fail-on sometimes: exit %v, want usage\n%s", code, out)
	}
}

// TestLintDatabaseBaseline: with --database-url the applied versions are
// the baseline.
func TestLintDatabaseBaseline(t *testing.T) {
	t.Parallel()
	url := testdb.Postgres(t)
	dir := writeDir(t, lintFiles)
	if code, out := run(context.Background(), "up", "--dir", dir, "--database-url", url, "--to", "1"); code != exitcode.OK {
		t.Fatalf("up --to 1: exit %v\n%s", code, out)
	}
	code, out := run(context.Background(), "lint", "--dir", dir, "--database-url", url)
	if code != exitcode.BadFile || !strings.Contains(out, "create-index-lock") || !strings.Contains(out, "2 files checked of 3") {
		t.Errorf("lint --database-url: exit %v\n%s", code, out)
	}
}

// TestUpCheckSafety: --check-safety=error refuses a pending file with an
// error finding before anything is applied (exit 3, the database
// untouched); warn applies it; on a no-op run nothing is checked.
func TestUpCheckSafety(t *testing.T) {
	t.Parallel()
	url := testdb.Postgres(t)
	dir := writeDir(t, lintFiles)
	if code, out := run(context.Background(), "up", "--dir", dir, "--database-url", url, "--to", "1", "--check-safety", "error"); code != exitcode.OK {
		t.Fatalf("up --to 1: exit %v\n%s", code, out)
	}
	code, out := run(context.Background(), "up", "--dir", dir, "--database-url", url, "--check-safety", "error")
	if code != exitcode.BadFile || !strings.Contains(out, "00002_index.sql") || !strings.Contains(out, "nothing applied") {
		t.Fatalf("up --check-safety=error: exit %v, want %v\n%s", code, exitcode.BadFile, out)
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM goose_db_version WHERE version_id > 1").Scan(&n); err != nil || n != 0 {
		t.Fatalf("after a refused run: %d versions above 1 (err %v), want 0", n, err)
	}
	code, out = run(context.Background(), "up", "--dir", dir, "--database-url", url, "--check-safety", "warn")
	if code != exitcode.OK || !strings.Contains(out, "create-index-lock") {
		t.Fatalf("up --check-safety=warn: exit %v\n%s", code, out)
	}
	// Everything applied: the hazardous file is no longer pending.
	code, out = run(context.Background(), "up", "--dir", dir, "--database-url", url, "--check-safety", "error")
	if code != exitcode.OK || strings.Contains(out, "check-safety") {
		t.Fatalf("no-op up --check-safety=error: exit %v\n%s", code, out)
	}
}

// TestLintGitBase: the files present in the git revision are the baseline.
func TestLintGitBase(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	dir := writeDir(t, map[string]string{"00001_users.sql": lintFiles["00001_users.sql"]})
	gitRun := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	gitRun("init", "-q")
	gitRun("add", ".")
	gitRun("commit", "-q", "-m", "base")
	if err := os.WriteFile(filepath.Join(dir, "00002_index.sql"), []byte(lintFiles["00002_index.sql"]), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out := run(context.Background(), "lint", "--dir", dir, "--git-base", "HEAD")
	if code != exitcode.BadFile || !strings.Contains(out, "00002_index.sql:2: create-index-lock") || !strings.Contains(out, "1 files checked of 2") {
		t.Errorf("--git-base HEAD: exit %v\n%s", code, out)
	}
	if code, out := run(context.Background(), "lint", "--dir", dir, "--git-base", "no-such-rev"); code != exitcode.Usage {
		t.Errorf("--git-base no-such-rev: exit %v, want usage\n%s", code, out)
	}
}

// runEnv runs the CLI with env as its whole environment and returns the
// exit code, stdout and stderr apart.
func runEnv(env map[string]string, args ...string) (exitcode.Code, string, string) {
	var out, errOut bytes.Buffer
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	code := Main(context.Background(), args, Streams{Out: &out, Err: &errOut, LookupEnv: lookup})
	return exitcode.Code(code), out.String(), errOut.String()
}

// TestLintEnvsub: lint reads an ENVSUB file with the variables expanded, as
// up runs it: the table a new file creates under ${TABLE} is the one the
// next file indexes only when TABLE names it.
func TestLintEnvsub(t *testing.T) {
	dir := writeDir(t, map[string]string{
		"00001_create.sql": "-- +goose ENVSUB ON\n-- +goose Up\nCREATE TABLE ${TABLE} (id bigint PRIMARY KEY);\n-- +goose Down\nDROP TABLE ${TABLE};\n",
		"00002_index.sql":  "-- +goose Up\nCREATE INDEX accounts_id ON accounts (id);\n-- +goose Down\nDROP INDEX accounts_id;\n",
	})
	code, out, errOut := runEnv(map[string]string{"TABLE": "accounts"}, "lint", "--dir", dir)
	if code != exitcode.OK || out != "" || !strings.Contains(errOut, "0 findings") {
		t.Errorf("TABLE=accounts (the index is on the new table): exit %v\n%s%s", code, out, errOut)
	}
	code, out, errOut = runEnv(map[string]string{"TABLE": "ledger"}, "lint", "--dir", dir)
	if code != exitcode.BadFile || !strings.Contains(out, "00002_index.sql:2: create-index-lock error: CREATE INDEX on existing table accounts") {
		t.Errorf("TABLE=ledger (accounts exists): exit %v\n%s%s", code, out, errOut)
	}
}

// TestLintFailOn: --fail-on sets the lowest severity that exits 3; the
// JSON output carries each finding's fields and the baseline.
func TestLintFailOn(t *testing.T) {
	dirs := map[string]string{
		// LOCK TABLE: a warning, and nothing else.
		"warning": writeDir(t, map[string]string{"00001_lock.sql": "-- +goose Up\nLOCK TABLE users IN SHARE MODE;\n-- +goose Down\nSELECT 1;\n"}),
		// No Down section: an info, and nothing else.
		"info": writeDir(t, map[string]string{"00001_nick.sql": "-- +goose Up\nCREATE TABLE nicks (id int);\n"}),
	}
	for _, tt := range []struct {
		dir, failOn string
		want        exitcode.Code
	}{
		{"warning", "error", exitcode.OK},
		{"warning", "warning", exitcode.BadFile},
		{"warning", "info", exitcode.BadFile},
		{"info", "error", exitcode.OK},
		{"info", "warning", exitcode.OK},
		{"info", "info", exitcode.BadFile},
		{"info", "none", exitcode.OK},
	} {
		code, out, errOut := runEnv(nil, "lint", "--dir", dirs[tt.dir], "--fail-on", tt.failOn, "-o", "json")
		if code != tt.want {
			t.Errorf("a %s finding, --fail-on %s: exit %v, want %v\n%s%s", tt.dir, tt.failOn, code, tt.want, out, errOut)
		}
	}

	code, out, _ := runEnv(nil, "lint", "--dir", dirs["warning"], "-o", "json")
	var rep struct {
		Findings []struct {
			File, Rule, Severity, Message, Fix, Section string
			Line                                        int
		}
		Checked, Read, Suppressed int
		Baseline                  string
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	if code != exitcode.OK || len(rep.Findings) != 1 || rep.Checked != 1 || rep.Read != 1 || !strings.HasPrefix(rep.Baseline, "no baseline") {
		t.Fatalf("-o json: exit %v, %+v", code, rep)
	}
	f := rep.Findings[0]
	if f.File != filepath.Join(dirs["warning"], "00001_lock.sql") || f.Line != 2 || f.Rule != "lock-table" || f.Severity != "warning" ||
		f.Section != "up" || !strings.Contains(f.Message, "LOCK TABLE users") || f.Fix == "" {
		t.Errorf("-o json finding: %+v", f)
	}
}

// TestAccountsReleaseLintsClean: the example's v2 release, checked against
// v1's schema, has nothing to report: the example shows the safe forms.
func TestAccountsReleaseLintsClean(t *testing.T) {
	code, out := run(context.Background(), "lint", "--dir", "../../examples/accounts/migrations", "--since", "20261106090000", "--fail-on", "info")
	if code != exitcode.OK || !strings.Contains(out, "1 files checked of 7, 0 findings") {
		t.Errorf("lint of the accounts v2 release: exit %v\n%s", code, out)
	}
}
