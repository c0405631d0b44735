package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/shiplock/shiplock/dialect"
	"github.com/shiplock/shiplock/dialect/dialecttest"
	"github.com/shiplock/shiplock/dialect/sqlite"
)

func TestConformance(t *testing.T) { dialecttest.Run(t, options(dialect.Table{})) }

// TestConformanceCustomTable: the Store's part of the suite on goose's
// -table names, plain, mixed case, quoted and qualified by an attached
// database's name.
func TestConformanceCustomTable(t *testing.T) {
	for _, name := range []string{"app_versions", "AppVersions", `"app versions"`, "main.app_versions"} {
		t.Run(name, func(t *testing.T) {
			table, err := dialect.ParseTable(name)
			if err != nil {
				t.Fatal(err)
			}
			dialecttest.RunStore(t, options(table))
		})
	}
}

// options: no server (no Faults) and no session settings. A short busy
// timeout bounds the Classifier's wait for another connection's write
// lock, which is what a lock timeout is on SQLite.
func options(table dialect.Table) dialecttest.Options {
	return dialecttest.Options{NewDatabase: func(t testing.TB) dialecttest.Opener {
		path := filepath.Join(t.TempDir(), "test.db")
		return func(t testing.TB) (*sql.DB, dialect.Dialect) {
			db, d, err := sqlite.Open(path + "?_pragma=busy_timeout(1000)")
			if err != nil {
				t.Fatal(err)
			}
			d.Table = table
			return db, d
		}
	}}
}
