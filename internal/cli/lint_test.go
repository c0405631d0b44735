package cli

import (
	"context"
	"database/sql"
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
