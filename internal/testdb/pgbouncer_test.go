package testdb

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestPgBouncerModes: through transaction pooling, a client's transactions
// reach several server backends when another client holds one; through
// session pooling, always its own.
func TestPgBouncerModes(t *testing.T) {
	s := PostgresServer(t)
	db := s.CreateDatabase(t, "")
	ctx := context.Background()
	for _, mode := range []PoolMode{PoolTransaction, PoolSession} {
		b := s.PgBouncer(t, mode, 2)
		connect := func() *pgx.Conn {
			cfg, err := pgx.ParseConfig(b.URL(db))
			if err != nil {
				t.Fatal(err)
			}
			cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
			c, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				t.Fatalf("%s: connect through pgbouncer: %v", mode, err)
			}
			t.Cleanup(func() { c.Close(ctx) })
			return c
		}
		a, other := connect(), connect()
		pid := func(c *pgx.Conn) (p int) {
			if err := c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&p); err != nil {
				t.Fatal(err)
			}
			return p
		}
		first := pid(a)
		// other's open transaction holds first's backend, if a let it go.
		tx, err := other.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var otherPid int
		if err := tx.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&otherPid); err != nil {
			t.Fatal(err)
		}
		second := pid(a)
		tx.Rollback(ctx)
		moved := first != second
		if want := mode == PoolTransaction; moved != want || (mode == PoolTransaction && otherPid != first) {
			t.Errorf("%s mode: backends %d then %d (other client on %d); want moved=%v", mode, first, second, otherPid, want)
		}
	}
}
