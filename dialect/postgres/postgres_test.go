package postgres_test

import (
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
