package cli

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/exitcode"
	"github.com/shiplock/shiplock/internal/testdb"
)

// The summaries of redo and repair say what happened: redo reverted one
// migration and applied it again; repair names the interrupted version and
// what it did, and with nothing to repair gives the real version.
func TestRedoAndRepairSummaries(t *testing.T) {
	ctx := context.Background()
	url := testdb.Postgres(t)
	dir := writeDir(t, map[string]string{
		"00001_a.sql": "-- +goose Up\nCREATE TABLE a (id int);\n-- +goose Down\nDROP TABLE a;\n",
		"00002_b.sql": "-- +goose Up\nCREATE TABLE b (id int);\n-- +goose Down\nDROP TABLE b;\n",
	})
	check := func(wantCode int, want string, args ...string) {
		t.Helper()
		code, out := run(ctx, append(args, "--dir", dir, "--database-url", url)...)
		if int(code) != wantCode || !strings.Contains(out, want) {
			t.Fatalf("shiplock %s: exit %d, want %d and %q:\n%s", strings.Join(args, " "), code, wantCode, want, out)
		}
	}
	check(0, "applied 2 migrations, now at version 2 (was 0) in ", "up")
	check(0, "reverted 1 migration and applied 1 migration, now at version 2 (was 2) in ", "redo")
	check(0, "nothing to repair: no migration was interrupted, at version 2\n", "repair", "--forget")

	// A NO TRANSACTION migration whose second statement fails leaves a
	// marker, and its first statement ran: the summary says so, and
	// forgetting the marker says so, at version 2.
	broken := "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE TABLE c (id int);\nSELECT * FROM missing;\n-- +goose Down\nDROP TABLE c;\n"
	if err := os.WriteFile(filepath.Join(dir, "00003_c.sql"), []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	check(1, "failed at version 3 after 1 of its statements ran outside a transaction (recorded; see shiplock status)", "up")
	check(0, "interrupted version 3: forgotten, now at version 2 (was 2) in ", "repair", "--forget")

	// A failure with nothing changed names the failing version apart from
	// the one the database stays at; a refusal before any migration ran
	// names only the latter.
	if err := os.WriteFile(filepath.Join(dir, "00003_c.sql"), []byte("-- +goose Up\nSELECT * FROM missing;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	check(1, "version 3 failed; nothing changed, still at version 2\n", "up")
	if err := os.WriteFile(filepath.Join(dir, "00002_b.sql"), []byte("-- +goose Up\nCREATE TABLE b (id int);\n-- +goose Down\nDROP TABLE missing;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	check(1, "reverting version 2 failed; nothing changed, still at version 2\n", "down", "--ignore-checksums")
	if err := os.WriteFile(filepath.Join(dir, "00002_b.sql"), []byte("-- +goose Up\nCREATE TABLE b (id bigint);\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	check(4, "failed; nothing changed, still at version 2\n", "up")
}

// TestLockTimeoutSummary: up that gives up waiting for the migration lock
// says the lock was not acquired, not that a version failed.
func TestLockTimeoutSummary(t *testing.T) {
	ctx := context.Background()
	url := testdb.Postgres(t)
	dir := writeDir(t, map[string]string{"00001_a.sql": "-- +goose Up\nCREATE TABLE a (id int);\n"})
	holdMigrationLock(t, url)
	code, out := run(ctx, "up", "--dir", dir, "--database-url", url, "--lock-timeout", "50ms")
	if code != exitcode.Locked || !strings.Contains(out, "migration lock not acquired, at version 0; nothing changed") || strings.Contains(out, "failed at version") || !strings.Contains(out, "held by pid") {
		t.Fatalf("up behind the migration lock: exit %v\n%s", code, out)
	}
}

// TestVerifyCounts: verify's ok line counts what it checked and what it
// could not yet (applied before checksums were kept), instead of "every
// applied migration matches" right after listing the unrecorded ones.
func TestVerifyCounts(t *testing.T) {
	ctx := context.Background()
	url := testdb.Postgres(t)
	dir := writeDir(t, map[string]string{
		"00001_a.sql": "-- +goose Up\nCREATE TABLE a (id int);\n",
		"00002_b.sql": "-- +goose Up\nCREATE TABLE b (id int);\n",
		"00003_c.sql": "-- +goose Up\nCREATE TABLE c (id int);\n",
	})
	if code, out := run(ctx, "up", "--dir", dir, "--database-url", url); code != 0 {
		t.Fatalf("up: exit %v\n%s", code, out)
	}
	code, out := run(ctx, "verify", "--dir", dir, "--database-url", url)
	if code != 0 || !strings.Contains(out, "ok: 3 applied migrations match their files\n") {
		t.Fatalf("verify: exit %v\n%s", code, out)
	}
	// As goose leaves them: applied, no checksum recorded.
	db, err := postgres.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("DELETE FROM shiplock_versions WHERE version_id IN (1, 2)"); err != nil {
		t.Fatal(err)
	}
	code, out = run(ctx, "verify", "--dir", dir, "--database-url", url)
	if code != 0 || !strings.Contains(out, "ok: 1 applied migration matches its file; 2 applied before checksums were kept (recorded by the next up)\n") {
		t.Fatalf("verify: exit %v\n%s", code, out)
	}
}

// TestTimeoutEndsLockWait: --timeout, the deadline of the whole command,
// ends up's wait for the migration lock (with --lock-timeout 0, waiting
// forever) and a read command's wait behind a lock on the version table:
// exit 6, saying the --timeout ran out.
func TestTimeoutEndsLockWait(t *testing.T) {
	ctx := context.Background()
	url := testdb.Postgres(t)
	dir := writeDir(t, map[string]string{"00001_a.sql": "-- +goose Up\nCREATE TABLE a (id int);\n"})
	conn := holdMigrationLock(t, url)
	code, out := run(ctx, "up", "--dir", dir, "--database-url", url, "--lock-timeout", "0", "--timeout", "300ms")
	if code != exitcode.Unavailable || !strings.Contains(out, "--timeout of 300ms ran out") {
		t.Fatalf("up behind the migration lock: exit %v\n%s", code, out)
	}
	if err := (postgres.Dialect{}).Unlock(ctx, conn); err != nil {
		t.Fatal(err)
	}

	// A read command behind a lock on goose_db_version.
	if code, out := run(ctx, "up", "--dir", dir, "--database-url", url); code != 0 {
		t.Fatalf("up: exit %v\n%s", code, out)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec("LOCK TABLE goose_db_version IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	code, out = run(ctx, "status", "--dir", dir, "--database-url", url, "--timeout", "300ms")
	if code != exitcode.Unavailable || !strings.Contains(out, "--timeout of 300ms ran out") {
		t.Fatalf("status behind a lock on goose_db_version: exit %v\n%s", code, out)
	}
}

// holdMigrationLock takes shiplock's migration lock on url on a session of
// its own, held until the test ends or Unlock.
func holdMigrationLock(t *testing.T, url string) *sql.Conn {
	t.Helper()
	ctx := context.Background()
	db, err := postgres.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if ok, err := (postgres.Dialect{}).TryLock(ctx, conn); !ok || err != nil {
		t.Fatalf("TryLock: %v %v", ok, err)
	}
	return conn
}
