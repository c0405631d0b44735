package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/shiplock/shiplock/dialect"
	"github.com/shiplock/shiplock/dialect/dialecttest"
	"github.com/shiplock/shiplock/dialect/sqlite"
)

func TestConformance(t *testing.T) { conformance(t, dialect.Table{}) }

// TestConformanceCustomTable: the suite on goose's -table names, plain,
// mixed case, quoted and qualified by an attached database's name.
func TestConformanceCustomTable(t *testing.T) {
	for _, name := range []string{"app_versions", "AppVersions", `"app versions"`, "main.app_versions"} {
		t.Run(name, func(t *testing.T) {
			table, err := dialect.ParseTable(name)
			if err != nil {
				t.Fatal(err)
			}
			conformance(t, table)
		})
	}
}

func conformance(t *testing.T, table dialect.Table) {
	dialecttest.Run(t, func(t testing.TB) dialecttest.Opener {
		path := filepath.Join(t.TempDir(), "test.db")
		return func(t testing.TB) (*sql.DB, dialect.Dialect) {
			db, d, err := sqlite.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			d.Table = table
			return db, d
		}
	})
}
