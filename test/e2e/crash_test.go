package e2e

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/internal/testdb"
)

// TestKilledNoTransactionMigration kills shiplock with SIGKILL in the middle
// of a NO TRANSACTION migration: the next up refuses and names the
// statement, and repair --resume finishes it.
func TestKilledNoTransactionMigration(t *testing.T) {
	url := testdb.Postgres(t)
	dir := writeMigrations(t, map[string]string{
		"00001_t.sql": "-- +goose Up\nCREATE TABLE t (id int);\n-- +goose Down\nDROP TABLE t;\n",
		"00002_idx.sql": `-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY t_id ON t (id);
SELECT pg_sleep(30);
CREATE TABLE after_sleep (id int);
-- +goose Down
DROP TABLE after_sleep;
DROP INDEX CONCURRENTLY t_id;
`,
	})
	cmd := exec.Command(shiplockBin, "up", "--dir", dir, "--database-url", url)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the marker says statement 1 is done (the sleep runs).
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		if n := queryIntOr(url, "SELECT statement FROM shiplock_versions WHERE version_id = 2 AND state = 'applying'", -1); n == 1 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the migration never reached its second statement")
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()

	out, err := exec.Command(shiplockBin, "up", "--dir", dir, "--database-url", url).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 4 {
		t.Fatalf("up after the kill: %v, want exit 4\n%s", err, out)
	}
	want := "00002_idx.sql: version 2 (NO TRANSACTION) was interrupted while applying, after 1 of 3 statements, next at line 4"
	if !strings.Contains(string(out), want) {
		t.Fatalf("up after the kill says:\n%s\nwant it to contain %q", out, want)
	}
	out, err = exec.Command(shiplockBin, "status", "--dir", dir, "--database-url", url).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "interrupted: ") {
		t.Fatalf("status: %v\n%s", err, out)
	}

	// The sleep is what was killed; shorten it (the file is not applied,
	// so editing it is fair) and resume: statements 2 and 3 run, not 1.
	writeFile(t, dir, "00002_idx.sql", strings.Replace(readFile(t, dir, "00002_idx.sql"), "pg_sleep(30)", "pg_sleep(0)", 1))
	out, err = exec.Command(shiplockBin, "repair", "--resume", "--dir", dir, "--database-url", url).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "applied 1 migration, now at version 2 (was 1)") {
		t.Fatalf("repair --resume: %v\n%s", err, out)
	}
	if n := queryIntOr(url, "SELECT count(*) FROM pg_tables WHERE tablename = 'after_sleep'", -1); n != 1 {
		t.Fatalf("after_sleep tables = %d, want 1", n)
	}
	out, err = exec.Command(shiplockBin, "verify", "--dir", dir, "--database-url", url).CombinedOutput()
	if err != nil {
		t.Fatalf("verify after repair: %v\n%s", err, out)
	}
}

func queryIntOr(url, q string, def int64) int64 {
	db, err := postgres.Open(url)
	if err != nil {
		return def
	}
	defer db.Close()
	var n int64
	if err := db.QueryRow(q).Scan(&n); err != nil {
		return def
	}
	return n
}
