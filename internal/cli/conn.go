package cli

import (
	"database/sql"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shiplock/shiplock/dialect"
	mysqldialect "github.com/shiplock/shiplock/dialect/mysql"
	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/internal/redact"
)

// pgGiven are the libpq variables any one of which says "the database is
// configured by the environment". pgx itself reads these and every other
// PG* variable (PGSSLMODE, PGREQUIREAUTH, PGSERVICEFILE, ...); shiplock
// only looks at them to refuse to guess a database when none is given.
var pgGiven = []string{"PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGDBNAME", "PGSERVICE", "PGPASSFILE"}

// target is a resolved database: which dialect, and how to reach it.
type target struct {
	dialect string // "postgres", "mysql" or "sqlite"
	conn    string // sqlite: the path or URL; mysql: the URL or DSN
	pg      *pgx.ConnConfig
	my      *mysql.Config
	// myPassword and myUser name where a MySQL password or user not in
	// the connection string came from ("MYSQL_PWD", "MYSQL_USER"), for env.
	myPassword, myUser string
}

// resolveTarget finds the database from --database-url, DATABASE_URL,
// GOOSE_DBSTRING (read as GOOSE_DRIVER says) or the PG* variables, and
// parses it. It never opens a connection.
//
// For MySQL, the connection string is a mysql:// URL or go-sql-driver's
// DSN (user:pass@tcp(host:3306)/db); MYSQL_PWD (the mysql client's
// variable) is the password when the string has none.
//
// For PostgreSQL, pgx's parser is the one reader of the settings: it reads
// the connection string, then the PG* environment, the service file
// (PGSERVICE) and the password file (PGPASSFILE, ~/.pgpass), as libpq does.
// shiplock adds only PGDBNAME, read as PGDATABASE when that is unset.
func (g *globals) resolveTarget() (target, error) {
	t, err := g.findTarget()
	if err == nil && t.dialect == "sqlite" && g.tls.set() {
		return t, usagef("--certfile, --ssl-cert and --ssl-key apply to PostgreSQL and MySQL only")
	}
	return t, err
}

func (g *globals) findTarget() (target, error) {
	driver, err := g.dbDriver()
	if err != nil {
		return target{}, err
	}
	if raw := g.set.database.value; raw != "" {
		switch driver {
		case "postgres":
			return g.parsePostgres(raw)
		case "mysql":
			return g.parseMySQL(raw)
		case "sqlite":
			t, err := parseTarget(raw)
			if err != nil || t.dialect != "sqlite" {
				t = target{dialect: "sqlite", conn: raw} // a file path
			}
			return t, nil
		}
		t, err := parseTarget(raw)
		switch {
		case err != nil:
			return t, err
		case t.dialect == "postgres":
			return g.parsePostgres(t.conn)
		case t.dialect == "mysql":
			return g.parseMySQL(t.conn)
		}
		return t, nil
	}
	switch driver {
	case "sqlite":
		return target{}, usagef(fmt.Sprintf("%s %s: set GOOSE_DBSTRING (or DATABASE_URL) to the database file", g.set.driver.source, g.set.driver.value))
	case "mysql":
		return target{}, usagef(fmt.Sprintf("%s %s: set GOOSE_DBSTRING (or DATABASE_URL) to mysql://USER@HOST:3306/DB or USER@tcp(HOST:3306)/DB", g.set.driver.source, g.set.driver.value))
	}
	given := false
	for _, env := range pgGiven {
		given = given || g.streams.getenv(env) != ""
	}
	if !given && g.set.driver.value != "" {
		return target{}, usagef(fmt.Sprintf("no database given: %s is set, but GOOSE_DBSTRING is not; set GOOSE_DBSTRING (as for goose), or --database-url or DATABASE_URL", g.set.driver.source))
	}
	if !given {
		return target{}, usagef("no database given: set --database-url or DATABASE_URL (postgres://USER@HOST/DB, mysql://USER@HOST/DB, sqlite://PATH or a file path), or PGHOST, PGUSER, PGPASSWORD and PGDATABASE (or PGSERVICE)")
	}
	conn := ""
	if g.streams.getenv("PGDATABASE") == "" {
		if db := g.streams.getenv("PGDBNAME"); db != "" {
			conn = "dbname=" + quoteConnValue(db)
		}
	}
	return g.parsePostgres(conn)
}

func parseTarget(raw string) (target, error) {
	scheme, _, hasScheme := strings.Cut(raw, "://")
	if hasScheme && !schemeRE.MatchString(scheme) {
		// Not a URL: "://" inside a DSN's password.
		hasScheme = false
	}
	if !hasScheme {
		if strings.HasPrefix(raw, "sqlite:") || strings.HasPrefix(raw, "file:") {
			return target{dialect: "sqlite", conn: raw}, nil
		}
		if mysqlDSNRE.MatchString(raw) {
			return target{dialect: "mysql", conn: raw}, nil
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
	case "mysql", "mariadb":
		return target{dialect: "mysql", conn: raw}, nil
	}
	return target{}, usagef(fmt.Sprintf("database URL scheme %q is not supported: use postgres://, mysql://, sqlite:// or a file path", scheme))
}

// mysqlDSNRE recognises go-sql-driver's DSN, user:pass@tcp(host:3306)/db,
// by its address, wherever it is: the password before it may hold any
// character. Other shapes (user@/db) need GOOSE_DRIVER=mysql.
var mysqlDSNRE = regexp.MustCompile(`@(tcp|tcp4|tcp6|unix)\([^()]*\)/`)

// schemeRE is a URL scheme (RFC 3986).
var schemeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.\-]*$`)

// errEncodePassword says how to fix a URL whose password is not
// percent-encoded, without repeating it.
const errEncodePassword = "the user name and password in the database URL must be percent-encoded: " +
	"write @ as %40, / as %2F, # as %23, ? as %3F, : as %3A, % as %25 and a space as %20 " +
	"(for example: printf %s \"$PASSWORD\" | jq -sRr @uri), or leave it out of the URL and set PGPASSWORD"

// parsePostgres parses a PostgreSQL connection string (empty: the
// environment alone), adds the password it resolves to the secrets, and
// refuses settings that can only fail after minutes of retries.
func (g *globals) parsePostgres(conn string) (target, error) {
	if redact.URLPasswordNeedsEncoding(conn) {
		return target{}, usagef(errEncodePassword)
	}
	if g.tls.set() {
		conn = g.tls.apply(conn)
	}
	cfg, err := pgx.ParseConfig(conn)
	if err != nil {
		var perr *pgconn.ParseConfigError
		if errors.As(err, &perr) && strings.Contains(conn, "://") && strings.Contains(conn, "@") {
			return target{}, usagef(fmt.Sprintf("parse database settings: %v; if the URL holds a password, %s", err, errEncodePassword))
		}
		return target{}, usagef(fmt.Sprintf("parse database settings: %v", err))
	}
	// Before anything can print an error that quotes it: a password may
	// come from a service or password file.
	g.sec.Add(cfg.Password)
	if err := checkHosts(cfg); err != nil {
		return target{}, err
	}
	return target{dialect: "postgres", pg: cfg}, nil
}

// checkHosts refuses hosts that can never resolve, so that the wait does
// not retry them until it times out: a port glued to the host (PGHOST
// "db:5432") and a variable that nothing substituted ("$DB_HOST",
// "${DB_HOST}"). IPv6 addresses ("::1"), host lists ("h1,h2", which pgx
// has already split) and socket directories ("/var/run/postgresql") pass.
func checkHosts(cfg *pgx.ConnConfig) error {
	hosts := []string{cfg.Host}
	for _, f := range cfg.Fallbacks {
		hosts = append(hosts, f.Host)
	}
	for _, h := range hosts {
		if strings.HasPrefix(h, "/") || strings.HasPrefix(h, "@") {
			continue // a Unix socket directory, or an abstract socket
		}
		if strings.Contains(h, "@") {
			// Part of a password, most likely: never print it.
			return usagef(errEncodePassword)
		}
		if strings.ContainsAny(h, "${}`") {
			return usagef(fmt.Sprintf("database host %q looks like a variable nothing substituted: the shell or manifest that sets PGHOST or DATABASE_URL must expand it", h))
		}
		if i := strings.LastIndexByte(h, ':'); i >= 0 {
			ip, _, _ := strings.Cut(h, "%") // an IPv6 zone: fe80::1%eth0
			if net.ParseIP(ip) == nil {
				return usagef(fmt.Sprintf("database host %q includes a port: give the host alone and the port separately (PGPORT=%s, or postgres://USER@HOST:%s/DB)", h, h[i+1:], h[i+1:]))
			}
		}
		if strings.ContainsAny(h, " \t\r\n") {
			return usagef(fmt.Sprintf("database host %q contains white space", h))
		}
	}
	return nil
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
	db, d, err := t.open(g.table)
	if err == nil {
		g.classifier = d // for the exit code
	}
	return db, d, err
}

// open opens the target, with goose's version table table. The handle is
// lazy: nothing is dialled yet.
func (t target) open(table dialect.Table) (*sql.DB, dialect.Dialect, error) {
	switch t.dialect {
	case "sqlite":
		return openSQLite(t.conn, table)
	case "mysql":
		return mysqldialect.Open(t.my), mysqldialect.Dialect{Table: table}, nil
	default:
		return postgres.OpenConfig(t.pg), postgres.Dialect{Table: table}, nil
	}
}

// newSecrets are the strings that must never be printed, as known before
// any database setting is parsed: the passwords in PGPASSWORD,
// PGSSLPASSWORD, MYSQL_PWD and the connection string. parsePostgres adds the
// password pgx resolves (from a service or password file too), and the
// ENVSUB lookup the values of secret-looking variables (see
// redact.IsSecretEnvName).
func (g *globals) newSecrets() *redact.Secrets {
	sec := redact.NewSecrets(g.streams.getenv("PGPASSWORD"), g.streams.getenv("PGSSLPASSWORD"), g.streams.getenv("MYSQL_PWD"))
	sec.AddDSN(g.databaseURL)
	sec.AddDSN(g.streams.getenv("DATABASE_URL"))
	return sec
}

// envLookup is the ENVSUB lookup for migration files: the environment,
// with the value of every variable whose name looks secret added to the
// secrets before any statement that holds it can be printed.
func (g *globals) envLookup(key string) (string, bool) {
	if g.streams.LookupEnv == nil {
		return "", false
	}
	v, ok := g.streams.LookupEnv(key)
	if ok && redact.IsSecretEnvName(key) {
		g.sec.Add(v)
	}
	return v, ok
}
