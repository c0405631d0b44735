package migrate

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/shiplock/shiplock/migrate/sqlfile"
)

// clientEncoder is implemented by dialects whose server checks query text
// against the session's client encoding (PostgreSQL).
type clientEncoder interface {
	ClientEncoding(ctx context.Context, conn *sql.Conn) (string, error)
}

// InvalidUTF8Line returns the line of the first statement text of
// direction d that is not valid UTF-8, or 0 when there is none. Such a
// migration runs only where the client encoding is not UTF8.
func (m *Migration) InvalidUTF8Line(d Direction) int { return m.badUTF8[d] }

// checkEncoding refuses, before the lock and before anything is written, a
// plan holding statement text that is not valid UTF-8 when the session's
// client_encoding is UTF8: the server would refuse that statement half-way
// through the run. A LATIN1 or SQL_ASCII session takes the bytes, as it
// does from goose. The error is a *sqlfile.ParseError at the first such
// line. Plans without such text cost nothing.
func (m *Migrator) checkEncoding(ctx context.Context, conn *sql.Conn, todo []*Migration, dir Direction) error {
	var bad *Migration
	for _, mig := range todo {
		if mig.badUTF8[dir] > 0 {
			bad = mig
			break
		}
	}
	if bad == nil {
		return nil
	}
	ce, ok := m.dialect.(clientEncoder)
	if !ok {
		return nil
	}
	enc, err := ce.ClientEncoding(ctx, conn)
	if err != nil {
		return fmt.Errorf("read client_encoding: %w", err)
	}
	if enc != "UTF8" {
		return nil
	}
	return &sqlfile.ParseError{
		File: bad.Source,
		Line: bad.badUTF8[dir],
		Msg:  fmt.Sprintf("%s statement text is not valid UTF-8, which this database's client_encoding (UTF8) refuses; save the file as UTF-8 (nothing was run)", dir),
	}
}
