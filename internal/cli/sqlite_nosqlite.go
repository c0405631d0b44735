//go:build nosqlite

package cli

import (
	"database/sql"

	"github.com/shiplock/shiplock/dialect"
)

// openSQLite, in a binary built with -tags nosqlite (the container images,
// which migrate database servers), says where SQLite is: the embedded
// engine is most of the binary.
func openSQLite(string, dialect.Table) (*sql.DB, dialect.Dialect, error) {
	return nil, nil, usagef("this shiplock was built with -tags nosqlite, for container images: use a postgres:// URL, or the full binary (go build ./cmd/shiplock) for SQLite")
}
