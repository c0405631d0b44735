package postgres_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/shiplock/shiplock/dialect"
	"github.com/shiplock/shiplock/dialect/dialecttest"
	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

func TestConformance(t *testing.T) {
	dialecttest.Run(t, func(t testing.TB) dialecttest.Opener {
		url := testdb.Postgres(t)
		return func(t testing.TB) (*sql.DB, dialect.Dialect) {
			db, err := postgres.Open(url)
			if err != nil {
				t.Fatal(err)
			}
			return db, postgres.Dialect{}
		}
	})
}

// TestRecordTableUpgrade: a shiplock_versions written before the marker
// columns existed is read as is (by read-only readers) and gains them.
func TestRecordTableUpgrade(t *testing.T) {
	ctx := context.Background()
	db, err := postgres.Open(testdb.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE shiplock_versions (version_id bigint PRIMARY KEY, source text NOT NULL, checksum text NOT NULL,
		state text NOT NULL, statement integer NOT NULL DEFAULT 0, updated_at timestamptz NOT NULL DEFAULT now());
		INSERT INTO shiplock_versions VALUES (7, '00007_x.sql', 'c', 'applying', 1)`); err != nil {
		t.Fatal(err)
	}
	d := postgres.Dialect{}
	recs, err := d.ListRecords(ctx, db)
	if err != nil || len(recs) != 1 || recs[0].Statement != 1 || recs[0].InFlight || recs[0].Alive {
		t.Fatalf("old table read = %+v, %v", recs, err)
	}
	if err := d.EnsureRecordTable(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := d.PutRecord(ctx, db, dialect.Record{Version: 7, Source: "00007_x.sql", Checksum: "c", State: dialect.StateApplying, Statement: 1, InFlight: true, Total: 3}); err != nil {
		t.Fatal(err)
	}
	recs, err = d.ListRecords(ctx, db)
	if err != nil || len(recs) != 1 || !recs[0].InFlight || recs[0].Total != 3 || recs[0].Pid == 0 || recs[0].Started.IsZero() {
		t.Fatalf("upgraded table read = %+v, %v", recs, err)
	}
}
