package migrate_test

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/internal/testdb"
	"github.com/shiplock/shiplock/migrate"
)

// queryCounter counts the statements a connection sends, by pgx's tracer.
type queryCounter struct{ all, tryLocks atomic.Int64 }

func (q *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	q.all.Add(1)
	if strings.Contains(d.SQL, "pg_try_advisory_lock") {
		q.tryLocks.Add(1)
	}
	return ctx
}

func (q *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TestLockWaitIgnoresNotifyFlood: any role that may connect can NOTIFY the
// channel on which waiters hear the lock's release. A flood of thousands of
// notifications while the lock is held costs the waiter a bounded number of
// re-checks (at most a few per second), not one per notification; and the
// real release still wakes it.
func TestLockWaitIgnoresNotifyFlood(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.Postgres(t)
	holder := openPG(t, url)
	defer holder.Close()
	hc, err := holder.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	if _, err := hc.ExecContext(ctx, "SELECT pg_advisory_lock(4097083626)"); err != nil {
		t.Fatal(err)
	}

	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	var count queryCounter
	cfg.Tracer = &count
	db := postgres.OpenConfig(cfg)
	defer db.Close()
	m := migrate.New(db, postgres.Dialect{}, load(t, threeTables()), migrate.Options{LockTimeout: 5 * time.Minute})
	type result struct {
		res *migrate.Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := m.Up(ctx, migrate.UpOptions{})
		done <- result{res, err}
	}()
	// The waiter listens before its first try.
	for count.tryLocks.Load() == 0 {
		time.Sleep(10 * time.Millisecond)
	}

	flooder := openPG(t, url)
	defer flooder.Close()
	const flood = 3000
	before := count.tryLocks.Load()
	beforeAll := count.all.Load()
	start := time.Now()
	for i := range flood {
		if _, err := flooder.ExecContext(ctx, "SELECT pg_notify('shiplock_lock_released', $1)", strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	checks := count.tryLocks.Load() - before
	stmts := count.all.Load() - beforeAll
	t.Logf("%d notifications in %s: the waiter re-checked %d times, %d statements", flood, elapsed.Round(time.Millisecond), checks, stmts)
	// One re-check per 200 ms, plus the one a silent second allows and the
	// one in flight when the flood began; 100 ms keeps a margin.
	if limit := int64(elapsed/(100*time.Millisecond)) + 3; checks > limit {
		t.Errorf("the waiter re-checked %d times during a flood of %s, want at most %d", checks, elapsed.Round(time.Millisecond), limit)
	}

	if _, err := hc.ExecContext(ctx, "SELECT pg_advisory_unlock(4097083626), pg_notify('shiplock_lock_released', '')"); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || len(r.res.Applied) != 3 {
		t.Fatalf("Up after the release = %+v, %v", r.res, r.err)
	}
}
