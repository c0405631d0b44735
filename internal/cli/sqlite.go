//go:build !nosqlite

package cli

import (
	"database/sql"

	"github.com/shiplock/shiplock/dialect"
	"github.com/shiplock/shiplock/dialect/sqlite"
)

func openSQLite(path string) (*sql.DB, dialect.Dialect, error) {
	db, d, err := sqlite.Open(path)
	return db, d, err
}
