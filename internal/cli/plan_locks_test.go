package cli

import (
	"database/sql"
	"regexp"
	"strings"
	"testing"

	"github.com/shiplock/shiplock/exitcode"
	"github.com/shiplock/shiplock/internal/testdb"
)

// TestPlanLocks runs plan --locks as a user does: the sentence that weighs
// a rewrite by the target's rows, --fail-on's exit code, JSON, and
// --shadow-temp leaving no database behind.
func TestPlanLocks(t *testing.T) {
	target := testdb.Postgres(t)
	dir := writeDir(t, map[string]string{
		"00001_accounts.sql": "-- +goose Up\nCREATE TABLE accounts (id bigint PRIMARY KEY, balance int);\n",
		"00002_widen.sql":    "-- +goose Up\nALTER TABLE accounts ALTER COLUMN balance TYPE bigint;\n",
	})
	env := map[string]string{"DATABASE_URL": target}
	if code, _, errs := runCLI(t, env, "up", "--to", "1", "--dir", dir); code != 0 {
		t.Fatalf("up --to 1: exit %d: %s", code, errs)
	}
	db, err := sql.Open("pgx", target)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO accounts SELECT g, g FROM generate_series(1, 2000) g; ANALYZE accounts`); err != nil {
		t.Fatal(err)
	}

	code, out, errs := runCLI(t, env, "plan", "--locks", "--shadow-url", testdb.Postgres(t), "--dir", dir, "--fail-on", "ACCESS EXCLUSIVE=1000")
	if code != int(exitcode.BadFile) {
		t.Fatalf("plan --locks --fail-on: exit %d, want %d\n%s%s", code, exitcode.BadFile, out, errs)
	}
	want := "statement 1 (00002_widen.sql:2): ALTER TABLE accounts ALTER COLUMN balance TYPE bigint;\n" +
		"  takes ACCESS EXCLUSIVE on public.accounts (≈ 2000 rows, "
	if !strings.Contains(out, want) || !strings.Contains(out, "and rewrites it: reads and writes block for the whole rewrite") {
		t.Errorf("output lacks the rewrite sentence:\n%s", out)
	}
	if !strings.Contains(errs, "00002_widen.sql:2 ACCESS EXCLUSIVE on public.accounts") {
		t.Errorf("the --fail-on error does not name the statement:\n%s", errs)
	}

	// Below the threshold, and --shadow-temp: exit 0, and the temporary
	// database the warning names is gone afterwards.
	code, out, errs = runCLI(t, env, "plan", "--locks", "--shadow-temp", "-o", "json", "--dir", dir, "--fail-on", "ACCESS EXCLUSIVE=1e6")
	if code != 0 || !strings.Contains(out, `"mode": "ACCESS EXCLUSIVE"`) || !strings.Contains(out, `"rewrite": true`) {
		t.Fatalf("plan --locks --shadow-temp -o json: exit %d\n%s%s", code, out, errs)
	}
	name := regexp.MustCompile(`temporary scratch database.* database=(shiplock_scratch_[0-9a-f]+)`).FindStringSubmatch(errs)
	if name == nil {
		t.Fatalf("no warning naming the temporary database:\n%s", errs)
	}
	var left bool
	if err := db.QueryRow(`SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name[1]).Scan(&left); err != nil || left {
		t.Errorf("temporary database %s left behind (err %v)", name[1], err)
	}

	// Usage: a scratch database is required; the target is not one.
	for _, args := range [][]string{
		{"plan", "--locks", "--dir", dir},
		{"plan", "--shadow-temp", "--dir", dir},
		{"plan", "-o", "json", "--dir", dir},
		{"plan", "--locks", "--shadow-temp", "--fail-on", "BIG", "--dir", dir},
	} {
		if code, _, errs := runCLI(t, env, args...); code != int(exitcode.Usage) {
			t.Errorf("%q: exit %d, want usage: %s", args, code, errs)
		}
	}
	if code, _, errs := runCLI(t, env, "plan", "--locks", "--shadow-url", target, "--dir", dir); code == 0 || !strings.Contains(errs, "not a scratch database") {
		t.Errorf("the target as scratch database: exit %d: %s", code, errs)
	}
}
