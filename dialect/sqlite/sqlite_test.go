package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/shiplock/shiplock/dialect"
	"github.com/shiplock/shiplock/dialect/dialecttest"
	"github.com/shiplock/shiplock/dialect/sqlite"
)

func TestConformance(t *testing.T) {
	dialecttest.Run(t, func(t testing.TB) dialecttest.Opener {
		path := filepath.Join(t.TempDir(), "test.db")
		return func(t testing.TB) (*sql.DB, dialect.Dialect) {
			db, d, err := sqlite.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			return db, d
		}
	})
}
