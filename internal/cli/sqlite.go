//go:build !nosqlite

package cli

import (
	"database/sql"

	"github.com/shiplock/shiplock/dialect"
	"github.com/shiplock/shiplock/dialect/sqlite"
)

func openSQLite(path string, table dialect.Table) (*sql.DB, dialect.Dialect, error) {
	db, d, err := sqlite.Open(path)
	if err != nil {
		return nil, nil, err
	}
	d.Table = table
	return db, d, nil
}
