package cli

import (
	"database/sql"
	"fmt"
	"strings"

	"github.com/shiplock/shiplock/dialect"
	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/internal/redact"
)

// pgEnv are the libpq variables shiplock reads, in the order they appear in
// the connection string it builds.
var pgEnv = []struct{ env, key string }{
	{"PGHOST", "host"},
	{"PGPORT", "port"},
	{"PGUSER", "user"},
	{"PGPASSWORD", "password"},
	{"PGDATABASE", "dbname"},
	{"PGSSLMODE", "sslmode"},
}

// target is a resolved database: which dialect, and how to reach it.
type target struct {
	dialect string // "postgres" or "sqlite"
	conn    string // connection string for the driver; may hold a password
}

// resolveTarget finds the database from --database-url, DATABASE_URL or
// the PG* variables. It never opens a connection.
func (g *globals) resolveTarget() (target, error) {
	raw := g.databaseURL
	if raw == "" {
		raw = g.streams.getenv("DATABASE_URL")
	}
	if raw != "" {
		return parseTarget(raw)
	}
	var parts []string
	for _, e := range pgEnv {
		v := g.streams.getenv(e.env)
		if v == "" && e.env == "PGDATABASE" {
			v = g.streams.getenv("PGDBNAME")
		}
		if v != "" {
			parts = append(parts, e.key+"="+quoteConnValue(v))
		}
	}
	if len(parts) == 0 {
		return target{}, usagef("no database given: set --database-url or DATABASE_URL (postgres://USER@HOST/DB, sqlite://PATH or a file path), or PGHOST, PGUSER, PGPASSWORD and PGDATABASE")
	}
	return target{dialect: "postgres", conn: strings.Join(parts, " ")}, nil
}

func parseTarget(raw string) (target, error) {
	scheme, _, hasScheme := strings.Cut(raw, "://")
	if !hasScheme {
		if strings.HasPrefix(raw, "sqlite:") || strings.HasPrefix(raw, "file:") {
			return target{dialect: "sqlite", conn: raw}, nil
		}
		if strings.Contains(raw, "=") && strings.Contains(raw, " ") {
			return target{dialect: "postgres", conn: raw}, nil // key=value DSN
		}
		return target{dialect: "sqlite", conn: raw}, nil // a file path
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		return target{dialect: "postgres", conn: raw}, nil
	case "sqlite", "sqlite3":
		return target{dialect: "sqlite", conn: "sqlite://" + strings.SplitN(raw, "://", 2)[1]}, nil
	}
	return target{}, usagef(fmt.Sprintf("database URL scheme %q is not supported: use postgres://, sqlite:// or a file path", scheme))
}

// quoteConnValue quotes a value for a libpq key=value connection string.
func quoteConnValue(v string) string {
	if v != "" && !strings.ContainsAny(v, ` '\`) {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// openDB resolves the database from flags and environment and opens a
// lazy handle: nothing is dialled yet.
func (g *globals) openDB() (*sql.DB, dialect.Dialect, error) {
	t, err := g.resolveTarget()
	if err != nil {
		return nil, nil, err
	}
	return t.open()
}

// open opens the target. The handle is lazy: nothing is dialled yet.
func (t target) open() (*sql.DB, dialect.Dialect, error) {
	switch t.dialect {
	case "sqlite":
		return openSQLite(t.conn)
	default:
		db, err := postgres.Open(t.conn)
		if err != nil {
			return nil, nil, usagef(fmt.Sprintf("parse database settings: %v", err))
		}
		return db, postgres.Dialect{}, nil
	}
}

// secrets are the strings that must never be printed: the password of the
// configured database, wherever it was given.
func (g *globals) secrets() *redact.Secrets {
	sec := redact.NewSecrets(g.streams.getenv("PGPASSWORD"))
	sec.AddDSN(g.databaseURL)
	sec.AddDSN(g.streams.getenv("DATABASE_URL"))
	return sec
}
