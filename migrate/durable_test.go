package migrate_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/internal/testdb"
	"github.com/shiplock/shiplock/migrate"
)

// crashOnReport is a log handler that crashes the server (immediate
// shutdown: WAL not yet written is lost, as in a crash) the moment the
// engine reports a version at least at as applied.
type crashOnReport struct {
	mu       sync.Mutex
	at       int64
	crash    func()
	crashed  bool
	reported []int64
}

func (h *crashOnReport) Enabled(context.Context, slog.Level) bool { return true }
func (h *crashOnReport) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *crashOnReport) WithGroup(string) slog.Handler            { return h }
func (h *crashOnReport) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "applied" {
		return nil
	}
	var v int64
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "version" {
			v = a.Value.Int64()
		}
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reported = append(h.reported, v)
	if v >= h.at && !h.crashed {
		h.crashed = true
		h.crash()
	}
	return nil
}

// TestReportedIsDurable crashes PostgreSQL right when shiplock reports a
// migration as applied, restarts it, and checks that every version
// reported (logged or returned) survived crash recovery.
func TestReportedIsDurable(t *testing.T) {
	for _, at := range []int64{1, 12} {
		t.Run(fmt.Sprint("crash at ", at), func(t *testing.T) {
			srv := testdb.OwnPostgres(t)
			url := srv.URL(srv.CreateDatabase(t, ""), "", "")
			files := fstest.MapFS{}
			for v := 1; v <= 30; v++ {
				// Each takes a while, so that a run spans several
				// durable points.
				files[fmt.Sprintf("%05d_m.sql", v)] = sqlFile(fmt.Sprintf("CREATE TABLE t%d (x int);\nSELECT pg_sleep(0.03);", v), fmt.Sprintf("DROP TABLE t%d;", v))
			}
			h := &crashOnReport{at: at, crash: func() { srv.Crash(t) }}
			db := openPG(t, url)
			defer db.Close()
			m := migrate.New(db, postgres.Dialect{}, load(t, files), migrate.Options{Logger: slog.New(h)})
			res, err := m.Up(context.Background(), migrate.UpOptions{})
			if !h.crashed {
				t.Fatalf("the server was not crashed (Up = %v)", err)
			}
			reported := append([]int64(nil), h.reported...)
			if res != nil {
				for _, r := range res.Applied {
					reported = append(reported, r.Version)
				}
			}
			srv.Start(t)
			db2 := openPG(t, url)
			defer db2.Close()
			rows, qerr := db2.Query("SELECT version_id FROM goose_db_version")
			if qerr != nil {
				t.Fatal(qerr)
			}
			defer rows.Close()
			have := map[int64]bool{}
			for rows.Next() {
				var v int64
				if err := rows.Scan(&v); err != nil {
					t.Fatal(err)
				}
				have[v] = true
			}
			for _, v := range reported {
				if !have[v] {
					t.Errorf("version %d was reported applied, but is gone after crash recovery (Up = %v)", v, err)
				}
			}
			t.Logf("reported %d versions, %d in the database after recovery", len(reported), len(have)-1)
		})
	}
}
