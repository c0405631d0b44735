// Package dialecttest is the conformance suite every dialect passes: the
// version table as goose reads it, shiplock's record table, and the lock.
package dialecttest

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/shiplock/shiplock/dialect"
)

// Opener returns a new handle on one database each time it is called, so
// the suite can act as two runners.
type Opener func(t testing.TB) (*sql.DB, dialect.Dialect)

// Run runs the suite. newDatabase creates a fresh, empty database and
// returns an Opener for it.
func Run(t *testing.T, newDatabase func(t testing.TB) Opener) {
	t.Run("VersionTable", func(t *testing.T) {
		t.Parallel()
		testVersionTable(t, newDatabase(t))
	})
	t.Run("Records", func(t *testing.T) {
		t.Parallel()
		testRecords(t, newDatabase(t))
	})
	t.Run("ListAll", func(t *testing.T) {
		t.Parallel()
		testListAll(t, newDatabase(t))
	})
	t.Run("RunTx", func(t *testing.T) {
		t.Parallel()
		testRunTx(t, newDatabase(t))
	})
	t.Run("Lock", func(t *testing.T) {
		t.Parallel()
		testLock(t, newDatabase(t))
	})
}

func conn(t testing.TB, open Opener) (*sql.Conn, dialect.Dialect) {
	t.Helper()
	db, d := open(t)
	t.Cleanup(func() { db.Close() })
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, d
}

func testVersionTable(t *testing.T, open Opener) {
	ctx := context.Background()
	c, d := conn(t, open)
	versions, checksums, err := d.TablesExist(ctx, c)
	if err != nil || versions || checksums {
		t.Fatalf("TablesExist on an empty database = %v, %v, %v; want false, false, nil", versions, checksums, err)
	}
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CreateVersionTable(ctx, tx); err != nil {
		t.Fatalf("CreateVersionTable: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if versions, _, err := d.TablesExist(ctx, c); err != nil || !versions {
		t.Fatalf("TablesExist after create = %v, %v", versions, err)
	}
	if err := d.EnsureRecordTable(ctx, c); err != nil {
		t.Fatal(err)
	}
	for _, v := range []int64{1, 20261126120000, 3} {
		if err := d.MarkApplied(ctx, c, dialect.Record{Version: v, Source: "f.sql", Checksum: "c"}); err != nil {
			t.Fatalf("MarkApplied(%d): %v", v, err)
		}
	}
	if err := d.MarkReverted(ctx, c, 20261126120000); err != nil {
		t.Fatalf("MarkReverted: %v", err)
	}
	// A Go migration: no checksum, no record.
	if err := d.MarkApplied(ctx, c, dialect.Record{Version: 4}); err != nil {
		t.Fatalf("MarkApplied without checksum: %v", err)
	}
	if err := d.MarkReverted(ctx, c, 4); err != nil {
		t.Fatalf("MarkReverted without record: %v", err)
	}
	recs, err := d.ListRecords(ctx, c)
	if err != nil || len(recs) != 2 {
		t.Fatalf("records after marking = %+v, %v; want versions 1 and 3", recs, err)
	}
	for _, r := range recs {
		if r.State != dialect.StateApplied || (r.Version != 1 && r.Version != 3) {
			t.Fatalf("record %+v", r)
		}
	}
	rows, err := d.ListVersions(ctx, c)
	if err != nil {
		t.Fatalf("ListVersions: %v", err)
	}
	var got []int64
	for i, r := range rows {
		if !r.IsApplied {
			t.Errorf("row %d: is_applied false", r.Version)
		}
		if i > 0 && rows[i-1].ID <= r.ID {
			t.Errorf("rows not newest id first: %d then %d", rows[i-1].ID, r.ID)
		}
		if r.Time.IsZero() {
			t.Errorf("row %d: no timestamp", r.Version)
		}
		got = append(got, r.Version)
	}
	want := []int64{3, 1, 0}
	if len(got) != len(want) {
		t.Fatalf("versions = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("versions = %v, want %v", got, want)
		}
	}
}

func testRecords(t *testing.T, open Opener) {
	ctx := context.Background()
	c, d := conn(t, open)
	for range 2 { // idempotent
		if err := d.EnsureRecordTable(ctx, c); err != nil {
			t.Fatalf("EnsureRecordTable: %v", err)
		}
	}
	if _, records, err := d.TablesExist(ctx, c); err != nil || !records {
		t.Fatalf("TablesExist records = %v, %v", records, err)
	}
	put := func(r dialect.Record) {
		t.Helper()
		if err := d.PutRecord(ctx, c, r); err != nil {
			t.Fatalf("PutRecord: %v", err)
		}
	}
	put(dialect.Record{Version: 1, Source: "00001_a.sql", Checksum: "aa", State: dialect.StateApplying, Statement: 2, InFlight: true, Total: 5})
	recs, err := d.ListRecords(ctx, c)
	if err != nil || len(recs) != 1 || !recs[0].InFlight || recs[0].Total != 5 || recs[0].Statement != 2 || recs[0].Alive {
		t.Fatalf("marker read back = %+v, %v; want statement 2 of 5 in flight, not alive (the reader wrote it)", recs, err)
	}
	// The marker columns are added to a table that lacks them.
	if err := d.EnsureRecordTable(ctx, c); err != nil {
		t.Fatalf("EnsureRecordTable on a current table: %v", err)
	}
	put(dialect.Record{Version: 2, Source: "00002_b.sql", Checksum: "bb", State: dialect.StateApplied})
	put(dialect.Record{Version: 1, Source: "00001_a.sql", Checksum: "cc", State: dialect.StateApplied, Total: 7}) // replaces
	if err := d.DeleteRecord(ctx, c, 2); err != nil {
		t.Fatalf("DeleteRecord: %v", err)
	}
	recs, err = d.ListRecords(ctx, c)
	if err != nil {
		t.Fatalf("ListRecords: %v", err)
	}
	if len(recs) != 1 || recs[0].Version != 1 || recs[0].Checksum != "cc" || recs[0].State != dialect.StateApplied || recs[0].Statement != 0 || recs[0].Updated.IsZero() {
		t.Fatalf("records = %+v, want one applied record for version 1 with cc", recs)
	}
	// Record: the marker fields are zero for an applied row (the readers
	// skip them there, which keeps a no-op run's read cheap).
	if r := recs[0]; r.InFlight || r.Total != 0 || r.Pid != 0 || !r.Started.IsZero() || r.Alive {
		t.Fatalf("applied record = %+v, want zero marker fields", r)
	}
}

func testLock(t *testing.T, open Opener) {
	ctx := context.Background()
	c1, d1 := conn(t, open)
	c2, d2 := conn(t, open)
	ok, err := d1.TryLock(ctx, c1)
	if err != nil || !ok {
		t.Fatalf("first TryLock = %v, %v; want true", ok, err)
	}
	ok, err = d2.TryLock(ctx, c2)
	if err != nil || ok {
		t.Fatalf("second runner's TryLock while held = %v, %v; want false", ok, err)
	}
	if holder, err := d2.LockHolder(ctx, c2); err != nil || holder == "" {
		t.Errorf("LockHolder while held = %q, %v; want a description", holder, err)
	}
	if err := d1.Unlock(ctx, c1); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	ok, err = d2.TryLock(ctx, c2)
	if err != nil || !ok {
		t.Fatalf("TryLock after unlock = %v, %v; want true", ok, err)
	}
	if err := d2.Unlock(ctx, c2); err != nil {
		t.Fatalf("Unlock: %v", err)
	}

}

func testListAll(t *testing.T, open Opener) {
	ctx := context.Background()
	c, d := conn(t, open)
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CreateVersionTable(ctx, tx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := d.EnsureRecordTable(ctx, c); err != nil {
		t.Fatal(err)
	}
	for _, v := range []int64{5, 7} {
		if err := d.MarkApplied(ctx, c, dialect.Record{Version: v, Source: "f.sql", Checksum: "c"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.PutRecord(ctx, c, dialect.Record{Version: 9, Source: "g.sql", Checksum: "d", State: dialect.StateApplying, Statement: 3}); err != nil {
		t.Fatal(err)
	}
	versions, records, err := d.ListAll(ctx, c)
	if err != nil {
		t.Fatalf("ListAll: %v", err)
	}
	wantV, _ := d.ListVersions(ctx, c)
	wantR, _ := d.ListRecords(ctx, c)
	if len(versions) != 3 || len(versions) != len(wantV) {
		t.Fatalf("ListAll versions = %+v, ListVersions = %+v", versions, wantV)
	}
	for i := range wantV {
		if versions[i] != wantV[i] {
			t.Errorf("version row %d: ListAll %+v, ListVersions %+v", i, versions[i], wantV[i])
		}
	}
	if len(records) != 3 || len(records) != len(wantR) {
		t.Fatalf("ListAll records = %+v, ListRecords = %+v", records, wantR)
	}
	byVersion := map[int64]dialect.Record{}
	for _, r := range wantR {
		byVersion[r.Version] = r
	}
	for _, r := range records {
		if w := byVersion[r.Version]; r != w {
			t.Errorf("record %d: ListAll %+v, ListRecords %+v", r.Version, r, w)
		}
	}
}

func testRunTx(t *testing.T, open Opener) {
	ctx := context.Background()
	c, d := conn(t, open)
	settings := d.TimeoutStatements(5*time.Second, time.Minute, true)
	stmts := []string{
		"CREATE TABLE s (n int);",
		"INSERT INTO s VALUES (1);\n-- a comment, no newline after",
		"INSERT INTO s VALUES (2)", // no semicolon
		d.MarkAppliedSQL(dialect.Record{Version: 7}),
	}
	if err := d.CreateVersionTable(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := d.RunTx(ctx, c, settings, stmts); err != nil {
		t.Fatalf("RunTx: %v", err)
	}
	count := func() int {
		t.Helper()
		var n int
		if err := c.QueryRowContext(ctx, "SELECT count(*) FROM s").Scan(&n); err != nil {
			t.Fatalf("count (is a transaction left open?): %v", err)
		}
		return n
	}
	if n := count(); n != 2 {
		t.Fatalf("rows = %d; want 2", n)
	}
	if rows, err := d.ListVersions(ctx, c); err != nil || len(rows) != 2 || rows[0].Version != 7 {
		t.Fatalf("versions after RunTx = %+v, %v; want 7 recorded", rows, err)
	}
	for _, tc := range []struct {
		name     string
		settings []string
		stmts    []string
		want     int
	}{
		{"statement", settings, []string{"INSERT INTO s VALUES (3);", "INSERT INTO missing VALUES (1);", "INSERT INTO s VALUES (4);"}, 1},
		{"first statement", nil, []string{"SELEC 1;", "INSERT INTO s VALUES (5);"}, 0},
		{"settings", []string{"SELEC 1"}, []string{"INSERT INTO s VALUES (5);"}, -1},
		{"last", nil, []string{"INSERT INTO s VALUES (6);", "INSERT INTO missing VALUES (1)"}, 1},
	} {
		err := d.RunTx(ctx, c, tc.settings, tc.stmts)
		var terr *dialect.TxError
		if !errors.As(err, &terr) || terr.Index != tc.want {
			t.Errorf("%s: RunTx = %v; want a *dialect.TxError at part %d", tc.name, err, tc.want)
		}
		if n := count(); n != 2 {
			t.Fatalf("%s: rows after a failed RunTx = %d; want 2: it left changes", tc.name, n)
		}
	}
}
