package dialecttest

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/shiplock/shiplock/dialect"
)

// RunStore checks the Store: goose's version table as goose reads it,
// shiplock's records, ListAll against ListVersions and ListRecords, and
// that MarkApplied/MarkReverted and RunTx with AppliedStatements/
// RevertedStatements write the same rows (one writer of version rows).
func RunStore(t *testing.T, o Options) {
	parts(t, o, map[string]func(*testing.T, Options, Opener){
		"VersionTable": testVersionTable,
		"Records":      testRecords,
		"ListAll":      testListAll,
		"OneWriter":    testOneWriter,
	})
}

// createTables creates both tables on c, the version table in a
// transaction as the engine does.
func createTables(t testing.TB, c *sql.Conn, d dialect.Dialect) {
	t.Helper()
	ctx := context.Background()
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CreateVersionTable(ctx, tx); err != nil {
		// Roll back first: a transaction left open would hold the
		// connection, and the cleanup that closes it would wait forever.
		_ = tx.Rollback()
		t.Fatalf("CreateVersionTable: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := d.EnsureRecordTable(ctx, c); err != nil {
		t.Fatalf("EnsureRecordTable: %v", err)
	}
}

func testVersionTable(t *testing.T, _ Options, open Opener) {
	ctx := context.Background()
	c, d := conn(t, open)
	versions, checksums, err := d.TablesExist(ctx, c)
	if err != nil || versions || checksums {
		t.Fatalf("TablesExist on an empty database = %v, %v, %v; want false, false, nil", versions, checksums, err)
	}
	createTables(t, c, d)
	if versions, _, err := d.TablesExist(ctx, c); err != nil || !versions {
		t.Fatalf("TablesExist after create = %v, %v", versions, err)
	}
	for _, v := range []int64{1, 20261126120000, 3} {
		if err := dialect.MarkApplied(ctx, d, c, dialect.Record{Version: v, Source: "f.sql", Checksum: "c"}); err != nil {
			t.Fatalf("MarkApplied(%d): %v", v, err)
		}
	}
	if err := dialect.MarkReverted(ctx, d, c, 20261126120000); err != nil {
		t.Fatalf("MarkReverted: %v", err)
	}
	// A Go migration: no checksum, no record.
	if err := dialect.MarkApplied(ctx, d, c, dialect.Record{Version: 4}); err != nil {
		t.Fatalf("MarkApplied without checksum: %v", err)
	}
	if err := dialect.MarkReverted(ctx, d, c, 4); err != nil {
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

func testRecords(t *testing.T, _ Options, open Opener) {
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

func testListAll(t *testing.T, _ Options, open Opener) {
	ctx := context.Background()
	c, d := conn(t, open)
	createTables(t, c, d)
	for _, v := range []int64{5, 7} {
		if err := dialect.MarkApplied(ctx, d, c, dialect.Record{Version: v, Source: "f.sql", Checksum: "c"}); err != nil {
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

// testOneWriter writes the same history into two fresh databases, once
// with MarkApplied/MarkReverted in transactions and once with RunTx of
// AppliedStatements/RevertedStatements (as a migration's transaction
// carries them), and compares what the readers see.
func testOneWriter(t *testing.T, o Options, openA Opener) {
	ctx := context.Background()
	a, d := conn(t, openA)
	b, _ := conn(t, o.NewDatabase(t))
	if n := len(d.AppliedStatements()) + len(d.RevertedStatements()); n != 0 {
		t.Errorf("AppliedStatements() and RevertedStatements() of nothing = %d statements; want none", n)
	}
	createTables(t, a, d)
	createTables(t, b, d)

	// A marker the applied record replaces; a Go migration (no checksum);
	// values that need quoting.
	marker := dialect.Record{Version: 4, Source: "00004_d.sql", Checksum: "dd", State: dialect.StateApplying, Statement: 1, Total: 2}
	steps := []struct {
		applied  []dialect.Record
		reverted []int64
	}{
		{applied: []dialect.Record{{Version: 1, Source: "00001_a.sql", Checksum: "aa"}}},
		{applied: []dialect.Record{{Version: 2}, {Version: 3, Source: "00003_it's \\ %s.sql", Checksum: `c'\3`}}},
		{applied: []dialect.Record{{Version: 4, Source: "00004_d.sql", Checksum: "dd2"}}},
		{reverted: []int64{3}},
		{reverted: []int64{2, 4}},
		{applied: []dialect.Record{{Version: 2}, {Version: 4, Source: "00004_d.sql", Checksum: "dd3"}}},
	}
	for _, c := range []dialect.Querier{a, b} {
		if err := d.PutRecord(ctx, c, marker); err != nil {
			t.Fatalf("PutRecord: %v", err)
		}
	}
	for i, st := range steps {
		tx, err := a.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st.applied != nil {
			err = dialect.MarkApplied(ctx, d, tx, st.applied...)
		} else {
			err = dialect.MarkReverted(ctx, d, tx, st.reverted...)
		}
		if err != nil {
			_ = tx.Rollback()
			t.Fatalf("step %d: mark: %v", i, err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		stmts := []string{"SELECT 1"} // after a migration's statements
		if st.applied != nil {
			stmts = append(stmts, d.AppliedStatements(st.applied...)...)
		} else {
			stmts = append(stmts, d.RevertedStatements(st.reverted...)...)
		}
		if err := d.RunTx(ctx, b, dialect.Settings{}, stmts); err != nil {
			t.Fatalf("step %d: RunTx: %v", i, err)
		}
	}
	read := func(c dialect.Querier) ([]dialect.VersionRow, []dialect.Record) {
		t.Helper()
		vs, err := d.ListVersions(ctx, c)
		if err != nil {
			t.Fatalf("ListVersions: %v", err)
		}
		rs, err := d.ListRecords(ctx, c)
		if err != nil {
			t.Fatalf("ListRecords: %v", err)
		}
		for i := range vs {
			vs[i].Time = time.Time{}
		}
		byVersion := make([]dialect.Record, 0, len(rs))
		for v := int64(0); v <= 4; v++ {
			for _, r := range rs {
				if r.Version == v {
					r.Updated = time.Time{}
					byVersion = append(byVersion, r)
				}
			}
		}
		return vs, byVersion
	}
	va, ra := read(a)
	vb, rb := read(b)
	if len(va) != 4 || len(ra) != 2 {
		t.Fatalf("MarkApplied/MarkReverted left versions %+v, records %+v; want 0, 1, 2, 4 and the records of 1 and 4", va, ra)
	}
	if ra[1].Checksum != "dd3" || ra[1].State != dialect.StateApplied || ra[1].Statement != 0 || ra[1].Total != 0 {
		t.Errorf("record 4 = %+v; want the applied record dd3, replacing the marker", ra[1])
	}
	if len(va) != len(vb) || len(ra) != len(rb) {
		t.Fatalf("MarkApplied/MarkReverted wrote versions %+v, records %+v;\nRunTx of AppliedStatements/RevertedStatements wrote %+v, %+v", va, ra, vb, rb)
	}
	for i := range va {
		if va[i] != vb[i] {
			t.Errorf("version row %d: MarkApplied %+v, RunTx %+v", i, va[i], vb[i])
		}
	}
	for i := range ra {
		if ra[i] != rb[i] {
			t.Errorf("record %d: MarkApplied %+v, RunTx %+v", ra[i].Version, ra[i], rb[i])
		}
	}
	// The quoted source and checksum read back as written.
	tx, err := a.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	r3 := dialect.Record{Version: 3, Source: "00003_it's \\ %s.sql", Checksum: `c'\3`}
	if err := dialect.MarkApplied(ctx, d, tx, r3); err != nil {
		t.Fatal(err)
	}
	rs, err := d.ListRecords(ctx, tx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Version == 3 && (r.Source != r3.Source || r.Checksum != r3.Checksum) {
			t.Errorf("record 3 read back as %q, %q; want %q, %q", r.Source, r.Checksum, r3.Source, r3.Checksum)
		}
	}
}
