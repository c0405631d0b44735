package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/shiplock/shiplock/dialect"
	"github.com/shiplock/shiplock/dialect/sqlite"
)

// TestClassify classifies real SQLite errors: a database another writer
// holds is a lock conflict (retried, then exit 7), a syntax error is
// permanent.
func TestClassify(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "test.db")
	db, d, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE TABLE t (id int)"); err != nil {
		t.Fatal(err)
	}
	holder, err := db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: holds the write lock
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	if _, err := holder.ExecContext(ctx, "INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	// A second writer that does not wait.
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_, busy := other.ExecContext(ctx, "INSERT INTO t VALUES (2)")
	if busy == nil {
		t.Fatal("a second writer wrote while the first held the lock")
	}
	if c := d.Classify(busy); c != dialect.LockConflict {
		t.Errorf("Classify(%v) = %v, want lock conflict", busy, c)
	}
	_, syntax := db.ExecContext(ctx, "SELEC 1")
	if syntax == nil {
		t.Fatal("SELEC 1 succeeded")
	}
	if c := d.Classify(syntax); c != dialect.Permanent {
		t.Errorf("Classify(%v) = %v, want permanent", syntax, c)
	}
}
