package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/exitcode"
	"github.com/shiplock/shiplock/internal/testdb"
)

// slowFirst is a data-only set whose first migration's transaction runs
// longer than the tests' 3 s lease: a holder paused or killed in it is
// caught there, with the transaction still open on the server.
func slowFirst(n int) map[string]string {
	files := map[string]string{
		"00001_row.sql": "-- +goose Up\nINSERT INTO t VALUES (1);\nSELECT pg_sleep(6);\n-- +goose Down\nDELETE FROM t WHERE n = 1;\n",
	}
	for i := 2; i <= n; i++ {
		files[fmt.Sprintf("%05d_row.sql", i)] = fmt.Sprintf("-- +goose Up\nINSERT INTO t VALUES (%d);\n-- +goose Down\nDELETE FROM t WHERE n = %d;\n", i, i)
	}
	return files
}

// leaseDB is an empty database holding only table t, reached through
// PgBouncer in transaction mode.
func leaseDB(t *testing.T) (pooled, direct string) {
	return pooledDB(t, testdb.PoolTransaction, 4)
}

// pooledDB creates a database with an empty table t and returns its URL
// through a PgBouncer in mode with pool server connections, and directly.
func pooledDB(t *testing.T, mode testdb.PoolMode, pool int) (pooled, direct string) {
	s := testdb.PostgresServer(t)
	name := s.CreateDatabase(t, "")
	direct = s.URL(name, "", "")
	db, err := postgres.Open(direct)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE t (n int NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	return s.PgBouncer(t, mode, pool).URL(name), direct
}

// leaseFlags make the lease short enough for a test to outwait.
var leaseFlags = []string{"--lock-lease", "3s"}

// leaseHolder starts `shiplock up` on slowFirst(n) through PgBouncer and
// returns once it holds the lease.
func leaseHolder(t *testing.T, n int) (dir, pooled, direct string, holder *runner) {
	dir = writeMigrations(t, slowFirst(n))
	pooled, direct = leaseDB(t)
	holder = startUp(t, dir, pooled, leaseFlags...)
	if _, ok := holder.waitLine("holding the lease lock"); !ok {
		t.Fatal("the first runner ended without taking the lease")
	}
	return dir, pooled, direct, holder
}

// waitLine waits for a log line of r holding want; false when r ended.
func (r *runner) waitLine(want string) (string, bool) {
	for line := range r.lines {
		if strings.Contains(line, want) {
			return line, true
		}
	}
	return "", false
}

// dbState is what a run can record: versions and rows.
func dbState(t *testing.T, url string) string {
	return fmt.Sprintf("versions=%d rows=%d distinct=%d records=%d",
		queryInt(t, url, "SELECT count(*) FROM goose_db_version"), queryInt(t, url, "SELECT count(*) FROM t"),
		queryInt(t, url, "SELECT count(DISTINCT n) FROM t"), queryInt(t, url, "SELECT count(*) FROM shiplock_versions"))
}

// TestLeasePausedHolder: the lease holder, paused (SIGSTOP) in its first
// migration past its lease while 8 runners wait, loses it: exactly one
// waiter takes over and applies everything once; the paused one, resumed,
// records nothing (the database is unchanged by it) and exits with the
// retryable stop code.
func TestLeasePausedHolder(t *testing.T) {
	const n, waiters = 5, 8
	dir, pooled, direct, holder := leaseHolder(t, n)
	if err := holder.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	defer holder.cmd.Process.Signal(syscall.SIGCONT)

	ws := make([]*runner, waiters)
	for i := range ws {
		ws[i] = startUp(t, dir, pooled, leaseFlags...)
	}
	took := 0
	for i, w := range ws {
		var lines []string
		for line := range w.lines {
			lines = append(lines, line)
			if strings.Contains(line, "holding the lease lock") {
				took++
			}
		}
		if err := w.cmd.Wait(); err != nil {
			t.Errorf("waiter %d: %v\n%s", i, err, strings.Join(lines, "\n"))
		}
	}
	if took != 1 {
		t.Errorf("%d waiters took the lease, want exactly 1", took)
	}
	before := dbState(t, direct)
	pausedFor := time.Since(paused)

	if err := holder.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	var tail []string
	for line := range holder.lines {
		tail = append(tail, line)
	}
	_ = holder.cmd.Wait()
	code := holder.cmd.ProcessState.ExitCode()
	after := dbState(t, direct)
	want := fmt.Sprintf("versions=%d rows=%d distinct=%d records=%d", n+1, n, n, n)
	t.Logf("paused %s (lease 3s); %d of %d waiters took over; resumed holder exit %d; state before its resume %s, after %s",
		pausedFor.Round(time.Millisecond), took, waiters, code, before, after)
	if before != want || after != want {
		t.Errorf("state before the resume %s, after %s; want %s both (0 duplicates, nothing recorded by the paused runner)", before, after, want)
	}
	if exitcode.Code(code) != exitcode.Stopped || !exitcode.Code(code).Retryable() {
		t.Errorf("resumed holder exit %d, want %s (retryable); its log:\n%s", code, exitcode.Stopped, strings.Join(tail, "\n"))
	}
	if !strings.Contains(strings.Join(tail, "\n"), "lease") {
		t.Errorf("the resumed holder's log does not say the lease was lost:\n%s", strings.Join(tail, "\n"))
	}
}

// TestLeaseKilledHolder: kill -9 of the lease holder; its lease expires
// and a waiting runner takes over and finishes. The time from the kill to
// the takeover is reported.
func TestLeaseKilledHolder(t *testing.T) {
	const n = 5
	dir, pooled, direct, holder := leaseHolder(t, n)
	waiter := startUp(t, dir, pooled, leaseFlags...)
	if _, ok := waiter.waitLine("connection not proven direct"); !ok {
		t.Fatal("the waiter ended before choosing its lock")
	}
	if err := holder.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	if ok, _ := holder.signalled(syscall.SIGKILL); !ok {
		t.Fatal("the holder was not killed")
	}
	if _, ok := waiter.waitLine("holding the lease lock"); !ok {
		t.Fatal("the waiter ended without taking the lease")
	}
	takeover := time.Since(killed)
	go func() {
		for range waiter.lines {
		}
	}()
	if err := waiter.cmd.Wait(); err != nil {
		t.Fatalf("waiter: %v", err)
	}
	state := dbState(t, direct)
	t.Logf("kill -9 of the holder (lease 3s): takeover after %s; %s", takeover.Round(time.Millisecond), state)
	if want := fmt.Sprintf("versions=%d rows=%d distinct=%d records=%d", n+1, n, n, n); state != want {
		t.Errorf("state %s, want %s", state, want)
	}
}

// TestLeaseCommandsThroughPgBouncer: through PgBouncer in transaction mode
// `up` takes the lease, runs a NO TRANSACTION file's CREATE INDEX
// CONCURRENTLY (valid afterwards), warns about a file's session SET and
// about the role's missing timeouts; status, check, await, verify and wait work.
func TestLeaseCommandsThroughPgBouncer(t *testing.T) {
	dir := writeMigrations(t, map[string]string{
		"00001_big.sql":   "-- +goose Up\nCREATE TABLE big (id int);\nINSERT INTO big SELECT generate_series(1, 1000);\n-- +goose Down\nDROP TABLE big;\n",
		"00002_index.sql": "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY big_id ON big (id);\nINSERT INTO t VALUES (2);\n-- +goose Down\nDROP INDEX CONCURRENTLY big_id;\n",
		"00003_path.sql":  "-- +goose Up\nSET search_path = public;\nCREATE TABLE x (id int);\n-- +goose Down\nDROP TABLE x;\n",
	})
	pooled, direct := leaseDB(t)

	out, code := shiplock(dir, pooled, "up")
	if code != 0 {
		t.Fatalf("up through the pooler: exit %d\n%s", code, out)
	}
	for _, want := range []string{"holding the lease lock", "session SET", "00003_path.sql", "role sets none"} {
		if !strings.Contains(out, want) {
			t.Errorf("up's output lacks %q:\n%s", want, out)
		}
	}
	if valid := queryInt(t, direct, "SELECT count(*) FROM pg_index WHERE indexrelid = 'big_id'::regclass AND indisvalid"); valid != 1 {
		t.Errorf("index big_id valid = %d, want 1", valid)
	}
	if state := dbState(t, direct); state != "versions=4 rows=1 distinct=1 records=3" {
		t.Errorf("state %s", state)
	}
	for _, args := range [][]string{{"status"}, {"check"}, {"await", "--timeout", "30s"}, {"verify"}, {"wait"}} {
		if out, code := shiplock(dir, pooled, args...); code != 0 {
			t.Errorf("%s through the pooler: exit %d\n%s", args[0], code, out)
		}
	}
}

// TestLeaseLostCancelsStatement: when another runner holds the lease (here
// written into goose_lock directly, as a takeover after an expiry looks),
// the holder's heartbeat sees it, cancels the NO TRANSACTION statement in
// flight on the server and exits with the retryable stop code, recording
// nothing more.
func TestLeaseLostCancelsStatement(t *testing.T) {
	dir := writeMigrations(t, map[string]string{
		"00001_sleep.sql": "-- +goose NO TRANSACTION\n-- +goose Up\nSELECT pg_sleep(600);\nINSERT INTO t VALUES (1);\n-- +goose Down\nSELECT 1;\n",
	})
	pooled, direct := leaseDB(t)
	holder := startUp(t, dir, pooled, leaseFlags...)
	if _, ok := holder.waitLine("holding the lease lock"); !ok {
		t.Fatal("the runner ended without taking the lease")
	}
	db, err := postgres.Open(direct)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	waitQuery(t, db, "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(600);' AND state = 'active'", 1)
	if _, err := db.Exec("UPDATE goose_lock SET locked_by = 'another runner', lease_expires_at = clock_timestamp() + interval '1 minute'"); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for line := range holder.lines {
		lines = append(lines, line)
	}
	_ = holder.cmd.Wait()
	code := holder.cmd.ProcessState.ExitCode()
	log := strings.Join(lines, "\n")
	if exitcode.Code(code) != exitcode.Stopped || !strings.Contains(log, "lost the migration lease") {
		t.Errorf("exit %d, want %s, after saying the lease was lost:\n%s", code, exitcode.Stopped, log)
	}
	running := queryInt(t, direct, "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(600);' AND state = 'active'")
	state := dbState(t, direct)
	t.Logf("after the lease was taken: exit %d, statements still running %d, %s", code, running, state)
	if running != 0 || state != "versions=1 rows=0 distinct=0 records=1" {
		t.Errorf("statements still running %d, state %s; want 0, the marker alone", running, state)
	}
}

// TestSessionLockThroughSessionPooler: `up --lock session` through
// PgBouncer in session mode, a connection it cannot prove direct, takes the
// session lock, warning that it trusts the pooler's mode; it succeeds,
// creates no lease table and leaves no lock.
func TestSessionLockThroughSessionPooler(t *testing.T) {
	dir := writeMigrations(t, map[string]string{
		"00001_a.sql": "-- +goose Up\nINSERT INTO t VALUES (1);\n-- +goose Down\nDELETE FROM t;\n",
	})
	pooled, direct := pooledDB(t, testdb.PoolSession, 2)
	out, code := shiplock(dir, pooled, "up", "--lock", "session")
	if code != 0 {
		t.Fatalf("up --lock session through a session-mode pooler: exit %d\n%s", code, out)
	}
	for _, want := range []string{"WARN", "could not prove a direct connection (a pooler in front?)", "pool_mode=session", "stranded"} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "lease") {
		t.Errorf("--lock session took the lease:\n%s", out)
	}
	if n := queryInt(t, direct, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"); n != 0 {
		t.Errorf("%d advisory locks left behind", n)
	}
	if n := queryInt(t, direct, "SELECT count(*) FROM pg_class WHERE relname = 'goose_lock'"); n != 0 {
		t.Errorf("goose_lock created")
	}
	if state := dbState(t, direct); state != "versions=2 rows=1 distinct=1 records=1" {
		t.Errorf("state %s", state)
	}
}
