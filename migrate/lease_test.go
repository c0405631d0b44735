package migrate_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/internal/testdb"
	"github.com/shiplock/shiplock/migrate"
)

// dataFiles are n data-only migrations into table t, which the test
// creates: a duplicate run shows as a duplicate row.
func dataFiles(n int) fstest.MapFS {
	files := fstest.MapFS{}
	for i := 1; i <= n; i++ {
		files[fmt.Sprintf("%05d_row.sql", i)] = sqlFile(fmt.Sprintf("INSERT INTO t VALUES (%d);", i), fmt.Sprintf("DELETE FROM t WHERE n = %d;", i))
	}
	return files
}

// syncBuffer is a log sink shared by goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// race runs runners Up at once through url, each on its own handle (two
// connections at most, as the command line opens), and returns the
// failures and the runners' logs.
func race(t *testing.T, url string, runners int, migs []*migrate.Migration, opts migrate.Options, up ...migrate.UpOptions) ([]error, string) {
	t.Helper()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		logs syncBuffer
	)
	start := make(chan struct{})
	for i := range runners {
		db, err := postgres.Open(url)
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(2)
		defer db.Close()
		o := opts
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil)).With("runner", i)
		m := migrate.New(db, postgres.Dialect{}, migs, o)
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Closed when done, as a runner's process exits: a session-mode
			// pooler holds a server connection per open client connection.
			defer db.Close()
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			var o migrate.UpOptions
			if len(up) > 0 {
				o = up[0]
			}
			if _, err := m.Up(ctx, o); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("runner %d: %w", i, err))
				mu.Unlock()
			}
		}()
	}
	close(start)
	wg.Wait()
	return errs, logs.String()
}

// leaseOutcome counts, on the direct connection db: rows of t and distinct
// ones, goose_db_version rows, leases still held and advisory locks held.
func leaseOutcome(t *testing.T, db *sql.DB) (rows, distinct, versions, leases, advisory int) {
	t.Helper()
	err := db.QueryRow(`SELECT (SELECT count(*) FROM t), (SELECT count(DISTINCT n) FROM t), (SELECT count(*) FROM goose_db_version),
		(SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))`).Scan(&rows, &distinct, &versions, &advisory)
	if err != nil {
		t.Fatal(err)
	}
	if lockTable(t, db) { // none when no runner needed the lease
		if err := db.QueryRow("SELECT count(*) FROM goose_lock WHERE locked").Scan(&leases); err != nil {
			t.Fatal(err)
		}
	}
	return
}

// tally adds up the outcome of race trials.
type tally struct{ failures, duplicates, left int }

// trial races runners through url on an empty database (direct is a direct
// handle on it) and checks every data-only migration of migs was applied
// once, no runner failed and no lock was left behind; it adds the trial's
// failures, duplicate rows and locks left to tl and returns the logs.
func (tl *tally) trial(t *testing.T, trial int, url string, runners int, migs []*migrate.Migration, opts migrate.Options, direct *sql.DB) string {
	t.Helper()
	errs, logs := race(t, url, runners, migs, opts)
	for _, err := range errs {
		t.Errorf("trial %d: %v", trial, err)
	}
	tl.failures += len(errs)
	rows, distinct, versions, leases, advisory := leaseOutcome(t, direct)
	tl.duplicates += rows - distinct
	tl.left += leases + advisory
	if n := len(migs); rows != n || distinct != n || versions != n+1 || leases != 0 || advisory != 0 {
		t.Errorf("trial %d: rows %d (distinct %d), goose_db_version rows %d, leases held %d, advisory locks %d; want %d, %d, %d, 0, 0",
			trial, rows, distinct, versions, leases, advisory, n, n, n+1)
	}
	return logs
}

// lockTable reports whether goose_lock exists in db.
func lockTable(t *testing.T, db *sql.DB) bool {
	t.Helper()
	var ok bool
	if err := db.QueryRow("SELECT to_regclass('goose_lock') IS NOT NULL").Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// emptyTDB creates a database on s with an empty table t, and returns its
// name and a direct handle on it, closed when the test ends.
func emptyTDB(t *testing.T, s *testdb.Server) (string, *sql.DB) {
	t.Helper()
	name := s.CreateDatabase(t, "")
	direct := openPG(t, s.URL(name, "", ""))
	t.Cleanup(func() { direct.Close() })
	if _, err := direct.Exec("CREATE TABLE t (n int NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	return name, direct
}

// TestLeaseThroughPgBouncer: runners reaching an empty database through
// PgBouncer in transaction mode pick the lease (auto) and apply every
// data-only migration exactly once, none failing, no lock left behind;
// with 32 runners on 4 server connections, and 2 runners on one.
func TestLeaseThroughPgBouncer(t *testing.T) {
	cases := []struct {
		runners, pool, trials int
	}{
		{32, 4, 20},
		{2, 1, 20},
	}
	const n = 10
	migs := load(t, dataFiles(n))
	s := testdb.PostgresServer(t)
	for _, c := range cases {
		t.Run(fmt.Sprintf("runners=%d,pool=%d", c.runners, c.pool), func(t *testing.T) {
			b := s.PgBouncer(t, testdb.PoolTransaction, c.pool)
			var tl tally
			start := time.Now()
			for trial := range c.trials {
				name := s.CreateDatabase(t, "")
				direct := openPG(t, s.URL(name, "", ""))
				direct.SetMaxOpenConns(1)
				if _, err := direct.Exec("CREATE TABLE t (n int NOT NULL)"); err != nil {
					t.Fatal(err)
				}
				logs := tl.trial(t, trial, b.URL(name), c.runners, migs, migrate.Options{LockTimeout: 2 * time.Minute, LockLease: 5 * time.Second}, direct)
				if !strings.Contains(logs, "holding the lease lock") || strings.Contains(logs, "lost the migration lease") {
					t.Errorf("trial %d: want the lease taken and never lost; logs:\n%s", trial, logs)
				}
				direct.Close()
			}
			t.Logf("%d trials of %d runners through PgBouncer (transaction mode, default_pool_size=%d): %d failures, %d duplicate rows, %d locks left behind, %s",
				c.trials, c.runners, c.pool, tl.failures, tl.duplicates, tl.left, time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestLockChoice: a direct connection keeps the session lock (no lock
// table is created); through a session-mode pooler, which no client can
// tell apart from a transaction-mode one, auto takes the lease and
// --lock session takes the session lock, warning that it trusts the
// pooler's mode.
func TestLockChoice(t *testing.T) {
	s := testdb.PostgresServer(t)
	migs := load(t, dataFiles(3))
	name, direct := emptyTDB(t, s)
	tableExists := func() bool { return lockTable(t, direct) }
	reset := func() {
		if _, err := direct.Exec("DELETE FROM goose_db_version WHERE version_id > 0; TRUNCATE t; TRUNCATE shiplock_versions"); err != nil {
			t.Fatal(err)
		}
	}

	errs, logs := race(t, s.URL(name, "", ""), 4, migs, migrate.Options{})
	if len(errs) > 0 || tableExists() || strings.Contains(logs, "lease") || strings.Contains(logs, "level=WARN") {
		t.Fatalf("direct: errors %v, lock table created %v; logs:\n%s", errs, tableExists(), logs)
	}

	// Session pooling holds a server connection per client connection.
	sess := s.PgBouncer(t, testdb.PoolSession, 8)
	reset()
	errs, logs = race(t, sess.URL(name), 1, migs, migrate.Options{Lock: migrate.LockSession})
	if len(errs) > 0 || tableExists() || strings.Contains(logs, "lease") {
		t.Fatalf("session-mode pooler, --lock session: errors %v, lock table created %v; logs:\n%s", errs, tableExists(), logs)
	}
	for _, want := range []string{"level=WARN", "could not prove a direct connection", "pool_mode=session", "stranded", "why="} {
		if !strings.Contains(logs, want) {
			t.Errorf("--lock session through a pooler: the log lacks %q:\n%s", want, logs)
		}
	}

	reset()
	errs, logs = race(t, sess.URL(name), 4, migs, migrate.Options{})
	if len(errs) > 0 || !tableExists() || !strings.Contains(logs, "holding the lease lock") {
		t.Fatalf("session-mode pooler, auto: errors %v; logs:\n%s", errs, logs)
	}
}

// TestSessionPooler: runners reaching an empty database through PgBouncer
// in session mode apply every data-only migration exactly once, none
// failing, no lock left behind: with --lock session (32 runners, one
// server connection each, more than the pool: the rest queue in
// PgBouncer) never creating the lock table, and with auto taking the
// lease (8 runners, two server connections each: run and heartbeat).
func TestSessionPooler(t *testing.T) {
	cases := []struct {
		lock                  migrate.LockMode
		runners, pool, trials int
	}{
		{migrate.LockSession, 32, 16, 20},
		{migrate.LockAuto, 8, 16, 20},
	}
	const n = 10
	migs := load(t, dataFiles(n))
	s := testdb.PostgresServer(t)
	for _, c := range cases {
		t.Run(fmt.Sprintf("lock=%s,runners=%d,pool=%d", c.lock, c.runners, c.pool), func(t *testing.T) {
			b := s.PgBouncer(t, testdb.PoolSession, c.pool)
			// One database for all trials, emptied between them: PgBouncer
			// keeps a pool of server connections per database.
			name := s.CreateDatabase(t, "")
			direct := openPG(t, s.URL(name, "", ""))
			defer direct.Close()
			direct.SetMaxOpenConns(1)
			var tl tally
			tables := 0
			start := time.Now()
			for trial := range c.trials {
				if _, err := direct.Exec("DROP TABLE IF EXISTS t, goose_db_version, shiplock_versions, goose_lock; CREATE TABLE t (n int NOT NULL)"); err != nil {
					t.Fatal(err)
				}
				logs := tl.trial(t, trial, b.URL(name), c.runners, migs, migrate.Options{Lock: c.lock, LockTimeout: 2 * time.Minute, LockLease: 5 * time.Second}, direct)
				table := lockTable(t, direct)
				if table {
					tables++
				}
				switch lease := strings.Contains(logs, "holding the lease lock"); {
				case c.lock == migrate.LockSession && (table || lease || !strings.Contains(logs, "could not prove a direct connection")):
					t.Errorf("trial %d: --lock session: lock table created %v, lease taken %v; want neither, and the warning; logs:\n%s", trial, table, lease, logs)
				case c.lock == migrate.LockAuto && (!table || !lease || strings.Contains(logs, "lost the migration lease")):
					t.Errorf("trial %d: auto: want the lease taken and never lost; logs:\n%s", trial, logs)
				}
			}
			t.Logf("%d trials of %d runners through PgBouncer (session mode, default_pool_size=%d, --lock %s): %d failures, %d duplicate rows, %d locks left behind, goose_lock created in %d trials, %s",
				c.trials, c.runners, c.pool, c.lock, tl.failures, tl.duplicates, tl.left, tables, time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestNoOpTakesNoLock: an up-to-date `up` through a transaction-mode
// pooler makes no lock choice: with the session lock held elsewhere (which
// also blocks taking the lease) it succeeds at once under every --lock
// mode, creates no goose_lock table and logs no lock choice.
func TestNoOpTakesNoLock(t *testing.T) {
	s := testdb.PostgresServer(t)
	migs := load(t, dataFiles(3))
	name, direct := emptyTDB(t, s)
	if errs, _ := race(t, s.URL(name, "", ""), 1, migs, migrate.Options{}); len(errs) > 0 {
		t.Fatal(errs)
	}
	ctx := context.Background()
	holder, err := direct.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if _, err := holder.ExecContext(ctx, "SELECT pg_advisory_lock($1)", postgres.LockID); err != nil {
		t.Fatal(err)
	}
	b := s.PgBouncer(t, testdb.PoolTransaction, 2)
	for _, mode := range []migrate.LockMode{migrate.LockAuto, migrate.LockSession, migrate.LockLease} {
		errs, logs := race(t, b.URL(name), 2, migs, migrate.Options{Lock: mode, LockTimeout: 100 * time.Millisecond})
		table := lockTable(t, direct)
		if len(errs) > 0 || table || strings.Contains(logs, "lease") || strings.Contains(logs, "direct") {
			t.Errorf("no-op up, --lock %s: errors %v, goose_lock created %v; logs:\n%s", mode, errs, table, logs)
		}
	}
	var advisory int
	if err := direct.QueryRow("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())").Scan(&advisory); err != nil || advisory != 1 {
		t.Errorf("advisory locks: %d (%v); want 1, the holder's", advisory, err)
	}
}

// TestGooseTableLockerExcludesShiplock: the lease is goose's table
// locker's row (goose v3.30.0, lock.NewPostgresTableLocker with its
// defaults): goose programs using it, shiplock runners through PgBouncer
// (lease, auto) and shiplock runners connected directly with --lock lease,
// started together on one empty database, take turns: every migration
// applied exactly once, nobody fails. (goose's table locker does not look
// at the session lock: direct runners under auto would not exclude it.)
func TestGooseTableLockerExcludesShiplock(t *testing.T) {
	const n, gooses, leased, sessions, rounds = 20, 3, 3, 3, 3
	files := rowFiles(n)
	s := testdb.PostgresServer(t)
	b := s.PgBouncer(t, testdb.PoolTransaction, 4)
	for round := range rounds {
		name := s.CreateDatabase(t, "")
		url := s.URL(name, "", "")
		start := make(chan struct{})
		errs := make(chan error, gooses+leased+sessions)
		var wg sync.WaitGroup
		run := func(who string, up func(context.Context) error) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
				defer cancel()
				if err := up(ctx); err != nil {
					errs <- fmt.Errorf("round %d %s: %w", round, who, err)
				}
			}()
		}
		for i := range gooses {
			db := openPG(t, url)
			defer db.Close()
			locker, err := lock.NewPostgresTableLocker(lock.WithTableLockTimeout(time.Second, 180))
			if err != nil {
				t.Fatal(err)
			}
			p, err := goose.NewProvider(goose.DialectPostgres, db, files, goose.WithLocker(locker))
			if err != nil {
				t.Fatal(err)
			}
			run(fmt.Sprint("goose ", i), func(ctx context.Context) error { _, err := p.Up(ctx); return err })
		}
		migs := load(t, files)
		for i := range leased + sessions {
			u, who := url, fmt.Sprint("shiplock direct ", i)
			if i < leased {
				u, who = b.URL(name), fmt.Sprint("shiplock through pgbouncer ", i)
			}
			db := openPG(t, u)
			defer db.Close()
			m := migrate.New(db, postgres.Dialect{}, migs, migrate.Options{Lock: migrate.LockLease, LockTimeout: 3 * time.Minute, LockLease: 5 * time.Second})
			run(who, func(ctx context.Context) error { _, err := m.Up(ctx, migrate.UpOptions{}); return err })
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		appliedOnce(t, url, round, n)
		if held := queryOne(t, url, "SELECT count(*) FROM goose_lock WHERE locked"); held != 0 {
			t.Fatalf("round %d: %d leases held after the race, want 0", round, held)
		}
	}
}

// TestSessionAndLeaseExclude: runners connected directly (auto: the
// session lock) and runners through PgBouncer (auto: the lease), started
// together on one empty database, each applying one migration, exclude
// each other: each migration applied once, nobody fails, no lock left
// behind.
func TestSessionAndLeaseExclude(t *testing.T) {
	const n, each, rounds = 16, 8, 5
	migs := load(t, dataFiles(n))
	s := testdb.PostgresServer(t)
	b := s.PgBouncer(t, testdb.PoolTransaction, 4)
	leased, sessions := 0, 0
	for round := range rounds {
		name := s.CreateDatabase(t, "")
		direct := openPG(t, s.URL(name, "", ""))
		defer direct.Close()
		if _, err := direct.Exec("CREATE TABLE t (n int NOT NULL)"); err != nil {
			t.Fatal(err)
		}
		var (
			wg   sync.WaitGroup
			errs [2][]error
			logs [2]string
			opts = migrate.Options{LockTimeout: 2 * time.Minute, LockLease: 5 * time.Second}
			urls = [2]string{s.URL(name, "", ""), b.URL(name)}
		)
		for i := range urls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// One migration each: the lock changes hands often.
				errs[i], logs[i] = race(t, urls[i], each, migs, opts, migrate.UpOptions{ByOne: true})
			}()
		}
		wg.Wait()
		for _, e := range append(errs[0], errs[1]...) {
			t.Errorf("round %d: %v", round, e)
		}
		// Pooled runners that start after the work is done take no lock.
		if strings.Contains(logs[0], "lease") {
			t.Errorf("round %d: a direct runner took the lease; logs:\n%s", round, logs[0])
		}
		leased += strings.Count(logs[1], "holding the lease lock")
		sessions += strings.Count(logs[0], "msg=applied")
		rows, distinct, versions, leases, advisory := leaseOutcome(t, direct)
		if rows != n || distinct != n || versions != n+1 || leases != 0 || advisory != 0 {
			t.Errorf("round %d: rows %d (distinct %d), goose_db_version rows %d, leases held %d, advisory locks %d; want %d, %d, %d, 0, 0",
				round, rows, distinct, versions, leases, advisory, n, n, n+1)
		}
	}
	t.Logf("%d rounds: %d leases taken through the pooler, %d migrations applied under the session lock", rounds, leased, sessions)
	if leased == 0 || sessions == 0 {
		t.Errorf("the runs did not mix: %d leases taken, %d migrations under the session lock", leased, sessions)
	}
}
