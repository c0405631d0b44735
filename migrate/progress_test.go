package migrate_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/shiplock/shiplock/internal/testdb"
	"github.com/shiplock/shiplock/migrate"
)

// attrs returns a record's attributes as strings.
func attrs(r slog.Record) map[string]string {
	out := map[string]string{}
	r.Attrs(func(a slog.Attr) bool {
		out[a.Key] = a.Value.String()
		return true
	})
	return out
}

// waitRecord reads log records until one has message msg and match
// accepts its attributes; it fails the test when done ends first.
func waitRecord(t *testing.T, ch <-chan slog.Record, done <-chan error, msg string, match func(map[string]string) bool) map[string]string {
	t.Helper()
	for {
		select {
		case r := <-ch:
			if a := attrs(r); r.Message == msg && match(a) {
				return a
			}
		case err := <-done:
			t.Fatalf("the run ended (%v) before a %q line", err, msg)
		}
	}
}

// A statement held up by another session's lock gets a heartbeat naming
// its file:line and the session holding the lock; the migration lock's
// holder is named while a second runner waits for it.
func TestProgressHeartbeat(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.Postgres(t)
	base := fstest.MapFS{"00001_t.sql": sqlFile("CREATE TABLE accounts (id int);", "DROP TABLE accounts;")}
	if _, err := pgMigrator(t, url, base, migrate.Options{}).Up(ctx, migrate.UpOptions{}); err != nil {
		t.Fatal(err)
	}
	files := fstest.MapFS{
		"00001_t.sql":     base["00001_t.sql"],
		"00002_email.sql": &fstest.MapFile{Data: []byte("-- +goose Up\nSELECT 1;\n\nALTER TABLE accounts\n  ADD COLUMN email text;\n\n-- +goose Down\nALTER TABLE accounts DROP COLUMN email;\n")},
	}

	blocker := openPG(t, url)
	defer blocker.Close()
	tx, err := blocker.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec("SELECT * FROM accounts"); err != nil {
		t.Fatal(err)
	}
	var blockerPID int
	if err := tx.QueryRow("SELECT pg_backend_pid()").Scan(&blockerPID); err != nil {
		t.Fatal(err)
	}

	log := &recordLog{ch: make(chan slog.Record, 100)}
	opts := migrate.Options{Logger: slog.New(log), ProgressInterval: 50 * time.Millisecond}
	done := make(chan error, 1)
	go func() {
		_, err := pgMigrator(t, url, files, opts).Up(ctx, migrate.UpOptions{})
		done <- err
	}()
	waitRecord(t, log.ch, done, "applying", func(a map[string]string) bool { return a["file"] == "00002_email.sql" })
	a := waitRecord(t, log.ch, done, "still running", func(map[string]string) bool { return true })
	if a["statement"] != "00002_email.sql:4" || !strings.Contains(a["waiting_for"], fmt.Sprintf("pid %d (", blockerPID)) || a["version"] != "2" {
		t.Errorf("heartbeat %v: want statement 00002_email.sql:4, waiting for pid %d", a, blockerPID)
	}

	// A second runner waits for the first one's migration lock and says
	// who holds it.
	log2 := &recordLog{ch: make(chan slog.Record, 100)}
	done2 := make(chan error, 1)
	go func() {
		_, err := pgMigrator(t, url, files, migrate.Options{Logger: slog.New(log2), ProgressInterval: 50 * time.Millisecond}).Up(ctx, migrate.UpOptions{})
		done2 <- err
	}()
	a = waitRecord(t, log2.ch, done2, "waiting for the migration lock", func(map[string]string) bool { return true })
	if !strings.HasPrefix(a["holder"], "pid ") {
		t.Errorf("lock wait %v: want the holder's pid", a)
	}

	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-done2; err != nil {
		t.Fatal(err)
	}
	wantVersion(t, pgMigrator(t, url, files, migrate.Options{}), 2)
}
