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
// of a NO TRANSACTION migration's statement whose effect the database
// cannot tell: the next up waits for the dead runner's statement to end,
// then refuses (exit 4) naming the statement, its line and both ways out;
// repair --skip finishes it without running it again, and without the file
// being touched.
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
	// Wait until the sleep runs.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		if n := queryIntOr(url, "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query = 'SELECT pg_sleep(30);'", -1); n == 1 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the migration never reached its second statement")
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	if err := cmd.Wait(); err == nil || cmd.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the runner was not killed: %v", err)
	}

	out, err := exec.Command(shiplockBin, "up", "--dir", dir, "--database-url", url).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 4 {
		t.Fatalf("up after the kill: %v, want exit 4\n%s", err, out)
	}
	for _, want := range []string{"00002_idx.sql:4: version 2 (NO TRANSACTION): statement 2 of 3 was running", "SELECT pg_sleep(30)", "shiplock repair --resume", "shiplock repair --skip"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("up after the kill says:\n%s\nwant it to contain %q", out, want)
		}
	}
	out, err = exec.Command(shiplockBin, "status", "--dir", dir, "--database-url", url).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "interrupted: ") {
		t.Fatalf("status: %v\n%s", err, out)
	}

	// The sleep ran (or not: it changed nothing); skip it: statement 3
	// runs, 1 and 2 do not.
	out, err = exec.Command(shiplockBin, "repair", "--skip", "--dir", dir, "--database-url", url).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "interrupted version 2: skipped its interrupted statement, then finished, now at version 2 (was 1)") {
		t.Fatalf("repair --skip: %v\n%s", err, out)
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
