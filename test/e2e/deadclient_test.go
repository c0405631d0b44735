package e2e

import (
	"context"
	"database/sql"
	"errors"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/internal/testdb"
)

// TestDeadRunnerReleasesLock: shiplock killed with SIGKILL in the middle of
// a 600 s statement loses the migration lock long before the statement
// would end, because its session asks the server to check that the client
// is still there (client_connection_check_interval, PostgreSQL 14+). The
// 30 s bound is a timeout on an event, not a performance claim.
func TestDeadRunnerReleasesLock(t *testing.T) {
	url := testdb.Postgres(t)
	db, err := postgres.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var version int
	if err := db.QueryRow("SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version < 140000 {
		t.Fatalf("server version %d: the README promises this for PostgreSQL 14+, test against 14+", version)
	}
	dir := writeMigrations(t, map[string]string{"00001_sleep.sql": "-- +goose Up\nSELECT pg_sleep(600);\n"})
	cmd := exec.Command(shiplockBin, "up", "--dir", dir, "--database-url", url)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
	}()

	// The runner's session sleeps while holding goose's lock.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var pid int
	for pid == 0 {
		err := db.QueryRowContext(ctx, `SELECT a.pid FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid
			WHERE a.datname = current_database() AND a.state = 'active' AND strpos(a.query, 'pg_sleep(600)') > 0
			  AND l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
			  AND ((l.classid::bigint << 32) | l.objid::bigint) = 4097083626`).Scan(&pid)
		switch {
		case errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
			t.Fatal("no session ran pg_sleep(600) holding the migration lock within a minute")
		case err == nil:
		case errors.Is(err, sql.ErrNoRows):
			select {
			case err := <-done:
				t.Fatalf("shiplock up ended before it was killed: %v", err)
			case <-time.After(10 * time.Millisecond):
			}
		default:
			t.Fatal(err)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill: %v", err)
	}
	killed := time.Now()
	if err := <-done; err == nil {
		t.Fatal("shiplock up succeeded; it should have been killed")
	}

	// Another session takes the lock once the server has noticed.
	lctx, lcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer lcancel()
	conn, err := db.Conn(lctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for {
		var ok bool
		if err := conn.QueryRowContext(lctx, "SELECT pg_try_advisory_lock(4097083626)").Scan(&ok); err != nil {
			t.Fatalf("the migration lock was not released within 30 s of killing its holder (pid %d) during a 600 s statement: %v", pid, err)
		}
		if ok {
			break
		}
		select {
		case <-lctx.Done():
			t.Fatalf("the migration lock was not released within 30 s of killing its holder (pid %d) during a 600 s statement", pid)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Logf("lock taken %s after the kill", time.Since(killed).Round(time.Millisecond))
	var alive int
	if err := conn.QueryRowContext(lctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid).Scan(&alive); err != nil || alive != 0 {
		t.Errorf("the killed runner's backend %d: %d rows in pg_stat_activity, %v; want it gone", pid, alive, err)
	}
	conn.ExecContext(lctx, "SELECT pg_advisory_unlock(4097083626)")
}
