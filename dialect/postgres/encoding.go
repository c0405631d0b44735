package postgres

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jackc/pgx/v5/stdlib"
)

// ClientEncoding returns the session's client_encoding as the server
// reported it at connect ("UTF8", "LATIN1", "SQL_ASCII"): the encoding the
// server checks query text against. It costs no round trip.
func (Dialect) ClientEncoding(_ context.Context, conn *sql.Conn) (string, error) {
	var enc string
	err := conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("postgres: unexpected driver connection %T", dc)
		}
		enc = c.Conn().PgConn().ParameterStatus("client_encoding")
		return nil
	})
	return enc, err
}
