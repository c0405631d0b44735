package e2e

import (
	"strings"
	"sync"
	"testing"

	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/internal/testdb"
)

// TestRunnersStartedDuringConcurrentIndex: 20 `shiplock up` processes
// started while another builds a concurrent index (held back by a writer,
// so the build lasts as long as the test wants) all wait and exit 0; during
// the build status, verify and check report the migration in progress, not
// interrupted, and no INVALID index as broken.
func TestRunnersStartedDuringConcurrentIndex(t *testing.T) {
	url := testdb.Postgres(t)
	dir := writeMigrations(t, map[string]string{
		"00001_t.sql":    "-- +goose Up\nCREATE TABLE t (id int);\nCREATE TABLE once (n int);\nINSERT INTO t SELECT generate_series(1, 1000);\n-- +goose Down\nDROP TABLE t, once;\n",
		"00002_idx.sql":  "-- +goose NO TRANSACTION\n-- +goose Up\nINSERT INTO once VALUES (2);\nCREATE INDEX CONCURRENTLY t_id ON t (id);\nINSERT INTO once VALUES (22);\n-- +goose Down\nDROP INDEX t_id;\n",
		"00003_more.sql": "-- +goose Up\nINSERT INTO once VALUES (3);\n-- +goose Down\nSELECT 1;\n",
	})
	if out, code := shiplock(dir, url, "up", "--to", "1"); code != 0 {
		t.Fatalf("up --to 1: exit %d\n%s", code, out)
	}
	db, err := postgres.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	blocker, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Rollback()
	if _, err := blocker.Exec("INSERT INTO t VALUES (-1)"); err != nil {
		t.Fatal(err)
	}
	first := startUp(t, dir, url)
	waitQuery(t, db, "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'CREATE INDEX CONCURRENTLY t_id %'", 1)

	const runners = 20
	codes := make([]int, runners)
	outs := make([]string, runners)
	var wg sync.WaitGroup
	for i := range runners {
		wg.Add(1)
		go func() { defer wg.Done(); outs[i], codes[i] = shiplock(dir, url, "up") }()
	}
	waitQuery(t, db, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle' AND query LIKE 'SELECT pg_try_advisory_lock%'", runners)

	out, code := shiplock(dir, url, "status")
	if code != 0 || !strings.Contains(out, "in-progress: 00002_idx.sql: version 2 (NO TRANSACTION) is in progress (applying by server process") ||
		!strings.Contains(out, "statement 2 of 3") || strings.Contains(out, "invalid-index") || strings.Contains(out, "interrupted") {
		t.Errorf("status during the build: exit %d\n%s", code, out)
	}
	if out, code := shiplock(dir, url, "verify"); code != 0 || !strings.Contains(out, "in progress") {
		t.Errorf("verify during the build: exit %d, want 0 and the migration in progress\n%s", code, out)
	}
	if out, code := shiplock(dir, url, "check"); code != 8 || !strings.Contains(out, "version 2 in progress") || strings.Contains(out, "interrupted") {
		t.Errorf("check during the build: exit %d, want 8, in progress, not interrupted\n%s", code, out)
	}

	if err := blocker.Rollback(); err != nil {
		t.Fatal(err)
	}
	if _, code := first.signalled(0); code != 0 {
		t.Errorf("first runner: exit %d", code)
	}
	wg.Wait()
	for i := range runners {
		if codes[i] != 0 {
			t.Errorf("runner %d: exit %d\n%s", i, codes[i], outs[i])
		}
	}
	var rows string
	if err := db.QueryRow("SELECT string_agg(n::text, ',' ORDER BY n) FROM once").Scan(&rows); err != nil || rows != "2,3,22" {
		t.Errorf("rows = %q, %v; want each once: 2,3,22", rows, err)
	}
}
