package migrate_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/shiplock/shiplock/dialect"
	"github.com/shiplock/shiplock/migrate"
)

// TestUpCheck: UpOptions.Check sees the pending migrations before anything
// is applied, its error ends the run with nothing applied, and a run with
// nothing pending does not call it (up --check-safety checks nothing then).
func TestUpCheck(t *testing.T) {
	forEach(t, func(t *testing.T, open func(testing.TB) (*sql.DB, dialect.Dialect)) {
		ctx := context.Background()
		m, db := newMigrator(t, open, threeTables(), migrate.Options{})
		if _, err := m.Up(ctx, migrate.UpOptions{To: 1}); err != nil {
			t.Fatal(err)
		}
		refuse := errors.New("refused")
		var seen []int64
		check := func(pending []*migrate.Migration) error {
			seen = seen[:0]
			for _, p := range pending {
				seen = append(seen, p.Version)
			}
			return refuse
		}
		if _, err := m.Up(ctx, migrate.UpOptions{Check: check}); !errors.Is(err, refuse) {
			t.Fatalf("Up with a refusing Check = %v, want its error", err)
		}
		if len(seen) != 2 || seen[0] != 2 || seen[1] != 3 {
			t.Errorf("Check saw versions %v, want [2 3]", seen)
		}
		wantVersion(t, m, 1)
		if tableExists(t, db, "b") {
			t.Error("table b created although Check refused")
		}

		if _, err := m.Up(ctx, migrate.UpOptions{}); err != nil {
			t.Fatal(err)
		}
		calls := 0
		res, err := m.Up(ctx, migrate.UpOptions{Check: func([]*migrate.Migration) error { calls++; return refuse }})
		if err != nil || len(res.Applied) != 0 || calls != 0 {
			t.Fatalf("no-op Up = %+v, %v with Check called %d times; want no error and no call", res, err, calls)
		}
	})
}
