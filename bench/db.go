package main

import (
	"context"
	"fmt"
	"net/url"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
)

// admin creates and drops the benchmark's databases and inspects what the
// tools left in them.
type admin struct {
	conn   *pgx.Conn
	base   *url.URL
	prefix string
	seq    atomic.Int64
	live   map[string]bool // created and not dropped yet
}

func newAdmin(ctx context.Context, rawURL, prefix string) (*admin, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("--database-url must be a postgres:// URL")
	}
	q := u.Query()
	if q.Get("sslmode") == "" {
		// lib/pq (golang-migrate) defaults to sslmode=require; the bench
		// talks to a loopback server.
		q.Set("sslmode", "disable")
		u.RawQuery = q.Encode()
	}
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return nil, fmt.Errorf("connect to the admin database: %w", err)
	}
	return &admin{conn: conn, base: u, prefix: prefix, live: map[string]bool{}}, nil
}

// close drops the databases still there (after an error or an interrupt)
// and disconnects.
func (a *admin) close(ctx context.Context) {
	var left []string
	for n := range a.live {
		left = append(left, n)
	}
	_ = a.drop(ctx, left...)
	a.conn.Close(ctx)
}

// url returns the URL of database name on the admin URL's server.
func (a *admin) url(name string) string {
	u := *a.base
	u.Path = "/" + name
	return u.String()
}

func (a *admin) serverVersion(ctx context.Context) string {
	var v string
	if err := a.conn.QueryRow(ctx, "SHOW server_version").Scan(&v); err != nil {
		return "unknown"
	}
	return v
}

// create makes a new empty database from template0 and returns its name
// and URL.
func (a *admin) create(ctx context.Context) (string, string, error) {
	name := fmt.Sprintf("%s_%d", a.prefix, a.seq.Add(1))
	if _, err := a.conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE template0"); err != nil {
		return "", "", fmt.Errorf("create database %s: %w", name, err)
	}
	a.live[name] = true
	return name, a.url(name), nil
}

// drop removes databases, ending sessions left in them.
func (a *admin) drop(ctx context.Context, names ...string) error {
	for _, n := range names {
		if _, err := a.conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{n}.Sanitize()+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop database %s: %w", n, err)
		}
		delete(a.live, n)
	}
	return nil
}

// contents is what a run left in a database.
type contents struct {
	Versions         int64 `json:"versions"`          // goose_db_version rows > 0, or schema_migrations' version
	DistinctVersions int64 `json:"distinct_versions"` // distinct applied versions (goose table)
	Dirty            bool  `json:"dirty,omitempty"`   // schema_migrations.dirty
	Tables           int64 `json:"tables"`            // t_NNNNN tables
	LogRows          int64 `json:"log_rows"`          // bench_log rows (one per seeded migration applied)
	DistinctLog      int64 `json:"distinct_log"`
	SeedRows         int64 `json:"seed_rows"` // rows in the seeded tables
}

// versionTable says where a tool records versions.
type versionTable int

const (
	noVersionTable versionTable = iota // psql
	gooseTable                         // goose and shiplock
	migrateTable                       // golang-migrate
)

// inspect connects to the database and counts what is there.
func (a *admin) inspect(ctx context.Context, dbURL string, vt versionTable) (contents, error) {
	var c contents
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return c, err
	}
	defer conn.Close(ctx)
	exists := func(table string) (bool, error) {
		var ok bool
		err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&ok)
		return ok, err
	}
	switch vt {
	case gooseTable:
		if ok, err := exists("goose_db_version"); err != nil {
			return c, err
		} else if ok {
			err := conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT version_id) FROM goose_db_version WHERE version_id > 0 AND is_applied`).
				Scan(&c.Versions, &c.DistinctVersions)
			if err != nil {
				return c, err
			}
		}
	case migrateTable:
		if ok, err := exists("schema_migrations"); err != nil {
			return c, err
		} else if ok {
			err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0), coalesce(bool_or(dirty), false) FROM schema_migrations`).Scan(&c.Versions, &c.Dirty)
			if err != nil {
				return c, err
			}
			c.DistinctVersions = c.Versions
		}
	}
	err = conn.QueryRow(ctx, `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname LIKE 't\_%'`).Scan(&c.Tables)
	if err != nil {
		return c, err
	}
	if ok, err := exists("bench_log"); err != nil {
		return c, err
	} else if ok {
		if err := conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT version) FROM bench_log`).Scan(&c.LogRows, &c.DistinctLog); err != nil {
			return c, err
		}
		rows, err := conn.Query(ctx, `SELECT version FROM bench_log`)
		if err != nil {
			return c, err
		}
		vs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return c, err
		}
		for _, v := range vs {
			var k int64
			if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM t_%05d", v)).Scan(&k); err != nil {
				return c, err
			}
			c.SeedRows += k
		}
	}
	return c, nil
}

// exactlyOnce reports whether a set of n migrations is applied completely
// and once, and if not, what is off.
func (c contents) exactlyOnce(n int, vt versionTable) (bool, string) {
	want := contents{Versions: int64(n), DistinctVersions: int64(n), Tables: int64(n),
		LogRows: int64(seeded(n)), DistinctLog: int64(seeded(n)), SeedRows: int64(seeded(n) * rowsPerSeed)}
	if vt == noVersionTable {
		want.Versions, want.DistinctVersions = 0, 0
	}
	if n == 0 {
		return true, ""
	}
	// A set of one migration still creates bench_log.
	if c == want {
		return true, ""
	}
	return false, fmt.Sprintf("want %+v, got %+v", want, c)
}
