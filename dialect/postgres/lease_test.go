package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shiplock/shiplock/dialect"
	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/internal/testdb"
)

// TestLeaseFenceAndInProgress: one owner at a time; a fenced write fails,
// with the lease-lost error, once the lease expired, and then another
// owner can take it; a marker counts as in progress (Alive) for readers
// while a lease is unexpired, and a session runner's TryLock gives way to
// it.
func TestLeaseFenceAndInProgress(t *testing.T) {
	ctx := context.Background()
	d := postgres.Dialect{}
	db, err := postgres.Open(testdb.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CreateVersionTable(ctx, tx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := d.EnsureRecordTable(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := d.PutRecord(ctx, db, dialect.Record{Version: 7, Source: "7.sql", Checksum: "x", State: dialect.StateApplying, Total: 2}); err != nil {
		t.Fatal(err)
	}
	alive := func() bool {
		rs, err := d.ListRecords(ctx, db)
		if err != nil || len(rs) != 1 {
			t.Fatalf("ListRecords = %v, %v", rs, err)
		}
		return rs[0].Alive
	}
	if alive() {
		t.Fatal("marker alive with no lease and no lock held")
	}

	a, err := d.Lease(ctx, db, "owner-a", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.Lease(ctx, db, "owner-b", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := a.Take(ctx, db); !ok || err != nil {
		t.Fatalf("a.Take = %v, %v", ok, err)
	}
	if ok, holder, err := b.Take(ctx, db); ok || err != nil || !strings.Contains(holder, "owner-a") {
		t.Fatalf("b.Take while a holds = %v, %q, %v; want false naming owner-a", ok, holder, err)
	}
	if !alive() {
		t.Error("marker not alive while a lease is held")
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if ok, err := d.TryLock(ctx, conn); ok || err != nil {
		t.Errorf("session TryLock while a lease is held = %v, %v; want false", ok, err)
	}
	fenced := func(l dialect.Lease) error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, l.Fence()); err != nil {
			return err
		}
		return tx.Commit()
	}
	if err := fenced(a); err != nil {
		t.Fatalf("a's fence while a holds: %v", err)
	}
	if err := fenced(b); !d.IsLeaseLost(err) {
		t.Fatalf("b's fence while a holds: %v; want the lease-lost error", err)
	}

	// a's lease runs out (as while its runner is paused).
	if _, err := db.Exec("UPDATE goose_lock SET lease_expires_at = clock_timestamp() - interval '1 second'"); err != nil {
		t.Fatal(err)
	}
	if err := fenced(a); !d.IsLeaseLost(err) {
		t.Errorf("a's fence after its lease expired: %v; want the lease-lost error", err)
	}
	if err := a.Renew(ctx, db); !errors.Is(err, dialect.ErrLeaseLost) {
		t.Errorf("a.Renew after expiry: %v; want ErrLeaseLost", err)
	}
	if alive() {
		t.Error("marker alive after the lease expired")
	}
	if ok, _, err := b.Take(ctx, db); !ok || err != nil {
		t.Fatalf("b.Take after a's lease expired = %v, %v", ok, err)
	}
	if err := a.Release(ctx, db); err != nil {
		t.Fatal(err)
	}
	var by sql.NullString
	if err := db.QueryRow("SELECT locked_by FROM goose_lock").Scan(&by); err != nil || by.String != "owner-b" {
		t.Errorf("after a's release the lease is %q, %v; want still owner-b's", by.String, err)
	}
	if err := b.Release(ctx, db); err != nil {
		t.Fatal(err)
	}
	if ok, err := d.TryLock(ctx, conn); !ok || err != nil {
		t.Errorf("session TryLock once the lease is released = %v, %v", ok, err)
	}
	if ok, holder, err := a.Take(ctx, db); ok || err != nil || !strings.Contains(holder, "session") {
		t.Errorf("a.Take while a session holds the session lock = %v, %q, %v; want false naming the session lock", ok, holder, err)
	}
}
