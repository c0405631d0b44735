package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/internal/testdb"
)

// dataOnly is a table plus 99 single-row INSERTs: the set on which goose,
// raced by N runners, applies rows several times.
func dataOnly() map[string]string {
	files := map[string]string{
		"00001_t.sql": "-- +goose Up\nCREATE TABLE t (n int NOT NULL);\n-- +goose Down\nDROP TABLE t;\n",
	}
	for i := 2; i <= 100; i++ {
		files[fmt.Sprintf("%05d_row.sql", i)] = fmt.Sprintf("-- +goose Up\nINSERT INTO t (n) VALUES (%d);\n-- +goose Down\nDELETE FROM t WHERE n = %d;\n", i, i)
	}
	return files
}

func queryInt(t testing.TB, url, q string) int64 {
	t.Helper()
	db, err := postgres.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n sql.NullInt64
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n.Int64
}

// TestManyProcessesAtOnce starts 32 `shiplock up` processes together on an
// empty database, as 32 replicas' initContainers do, several rounds in a
// row: every process exits 0 and every migration is applied exactly once.
func TestManyProcessesAtOnce(t *testing.T) {
	dir := writeMigrations(t, dataOnly())
	const runners, rounds = 32, 3
	for round := range rounds {
		url := testdb.Postgres(t)
		var wg sync.WaitGroup
		type outcome struct {
			err    error
			stderr string
		}
		results := make([]outcome, runners)
		start := make(chan struct{})
		for i := range runners {
			cmd := exec.Command(shiplockBin, "up", "--dir", dir, "--database-url", url, "--log-format", "json")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				results[i] = outcome{cmd.Run(), stderr.String()}
			}()
		}
		close(start)
		wg.Wait()
		for i, r := range results {
			if r.err != nil {
				t.Errorf("round %d runner %d: %v\n%s", round, i, r.err, r.stderr)
			}
		}
		rows := queryInt(t, url, "SELECT count(*) FROM t")
		distinct := queryInt(t, url, "SELECT count(DISTINCT n) FROM t")
		versions := queryInt(t, url, "SELECT count(*) FROM goose_db_version")
		if rows != 99 || distinct != 99 || versions != 101 {
			t.Fatalf("round %d: %d rows (%d distinct), %d version rows; want 99, 99, 101", round, rows, distinct, versions)
		}
	}
}

// TestKillAndRerun kills `shiplock up` with SIGKILL at a random point of a
// 500-migration run, then reruns it: the rerun reaches the latest version
// with no manual step and nothing is applied twice. The last migration
// waits for a row the test writes only after the kill, so the run cannot
// finish first: each trial asserts that the process died of the signal
// with the database part-way.
func TestKillAndRerun(t *testing.T) {
	files := map[string]string{}
	for i := 1; i <= 500; i++ {
		files[fmt.Sprintf("%05d_t%d.sql", i, i)] = fmt.Sprintf(
			"-- +goose Up\nCREATE TABLE t%d (id int PRIMARY KEY, v text);\nCREATE INDEX t%d_v ON t%d (v);\nINSERT INTO t%d VALUES (1, 'x');\n-- +goose Down\nDROP TABLE t%d;\n",
			i, i, i, i, i)
	}
	files["00500_t500.sql"] = strings.Replace(files["00500_t500.sql"], "-- +goose Down", `-- +goose StatementBegin
DO $$ BEGIN
  WHILE NOT EXISTS (SELECT FROM kill_gate) LOOP PERFORM pg_sleep(0.01); END LOOP;
END $$;
-- +goose StatementEnd
-- +goose Down`, 1)
	dir := writeMigrations(t, files)
	for trial := range 3 {
		url := testdb.Postgres(t)
		execSQL(t, url, "CREATE TABLE kill_gate (open bool)")
		killAt := int64(20 + rand.IntN(400))
		cmd := exec.Command(shiplockBin, "up", "--dir", dir, "--database-url", url)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		// Poll the version table until the run passes killAt.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		for ctx.Err() == nil {
			if n, ok := currentVersion(url); ok && n >= killAt {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		cancel()
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("trial %d: kill: %v (the run ended first)", trial, err)
		}
		err := <-done
		var exit *exec.ExitError
		if !errors.As(err, &exit) || !exit.Sys().(syscall.WaitStatus).Signaled() || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("trial %d: the run ended with %v, not killed by SIGKILL", trial, err)
		}
		killedAt, _ := currentVersion(url)
		if killedAt < killAt || killedAt >= 500 {
			t.Fatalf("trial %d: killed at version %d, want %d..499: the kill was not mid-run", trial, killedAt, killAt)
		}
		execSQL(t, url, "INSERT INTO kill_gate VALUES (true)")

		out, err := exec.Command(shiplockBin, "up", "--dir", dir, "--database-url", url, "--log-format", "json").CombinedOutput()
		if err != nil {
			t.Fatalf("trial %d: rerun after kill at version %d: %v\n%s", trial, killedAt, err, out)
		}
		if v := queryInt(t, url, "SELECT max(version_id) FROM goose_db_version"); v != 500 {
			t.Fatalf("trial %d: version %d after rerun, want 500", trial, v)
		}
		if n := queryInt(t, url, "SELECT count(*) FROM goose_db_version"); n != 501 {
			t.Fatalf("trial %d: %d version rows, want 501", trial, n)
		}
		tables := queryInt(t, url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename ~ '^t[0-9]+$'")
		if tables != 500 {
			t.Fatalf("trial %d: %d tables, want 500", trial, tables)
		}
		t.Logf("trial %d: killed at version %d (aimed at %d), rerun completed: %s", trial, killedAt, killAt, strings.TrimSpace(lastLine(out)))
	}
}

func execSQL(t testing.TB, url, q string) {
	t.Helper()
	db, err := postgres.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func currentVersion(url string) (int64, bool) {
	db, err := postgres.Open(url)
	if err != nil {
		return 0, false
	}
	defer db.Close()
	var v sql.NullInt64
	if err := db.QueryRow("SELECT max(version_id) FROM goose_db_version").Scan(&v); err != nil {
		return 0, false
	}
	return v.Int64, true
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}
