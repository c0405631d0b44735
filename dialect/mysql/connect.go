package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// DefaultConnectTimeout bounds dialling and the handshake when the
// configuration sets no timeout: the driver's own default is the OS's TCP
// connect timeout (minutes), and a wait loop needs an answer.
const DefaultConnectTimeout = 10 * time.Second

// ParseURL parses mysql://user:password@host:port/database?param=value.
// User and password are percent-decoded; the port defaults to 3306; the
// database may be empty (none selected). Query parameters are the
// go-sql-driver DSN parameters (tls, charset, loc, timeout, ...); any other
// name is an error: the driver would send it to the server as a session
// variable, so a misspelt parameter would surface as a server error at
// connect time. Session variables belong in the DSN form (ParseDSN).
func ParseURL(raw string) (*mysql.Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url's errors quote the whole URL, password included.
		return nil, errors.New("mysql: invalid URL")
	}
	if u.Scheme != "mysql" {
		return nil, fmt.Errorf("mysql: URL scheme %q, want mysql://", u.Scheme)
	}
	if u.Opaque != "" || u.Host == "" {
		return nil, errors.New("mysql: URL has no host: want mysql://user:password@host:port/database")
	}
	if u.Fragment != "" {
		return nil, errors.New("mysql: URL has a fragment (#...): percent-encode # in a password as %23")
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "3306")
	}
	db := strings.TrimPrefix(u.Path, "/")
	if strings.Contains(db, "/") {
		return nil, fmt.Errorf("mysql: URL path %q: want one database name", u.Path)
	}
	// The driver parses the parameters (and checks their values) from a
	// DSN holding only the address, so no user-controlled text can move
	// the DSN's separators.
	dsn := "tcp(" + addr + ")/"
	if u.RawQuery != "" {
		dsn += "?" + u.RawQuery
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("mysql: URL parameters: %w", err)
	}
	if len(cfg.Params) > 0 {
		names := make([]string, 0, len(cfg.Params))
		for k := range cfg.Params {
			names = append(names, k)
		}
		sort.Strings(names)
		hint := "the driver's DSN parameters only; use the DSN form user@tcp(host:port)/db?var=value to set session variables"
		for _, n := range names {
			// libpq's and the mysql client's TLS settings, brought along
			// by habit: the driver's is tls.
			if k := strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(n)); k == "sslmode" || k == "ssl" {
				hint = "TLS is the driver's tls parameter: tls=true (verified), tls=preferred or tls=skip-verify"
			}
		}
		return nil, fmt.Errorf("mysql: unknown URL parameter %s (%s)", strings.Join(names, ", "), hint)
	}
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.DBName = db
	return cfg, nil
}

// ParseDSN parses the go-sql-driver form,
// user:password@tcp(host:port)/database?param=value, as the driver does:
// parameters it does not know are session variables set at connect.
func ParseDSN(dsn string) (*mysql.Config, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		// The driver's errors do not hold the DSN, but stay on the safe side.
		return nil, fmt.Errorf("mysql: DSN: %w", err)
	}
	return cfg, nil
}

// Open returns a handle for cfg with what shiplock relies on forced: times
// are parsed (tstamp scans into time.Time); one statement per query
// (multiStatements off: each statement is its own query, as goose sends
// it, so a failure names its statement); no client-side interpolation
// (queries with arguments are prepared by the server); a connect timeout
// (DefaultConnectTimeout unless cfg sets one). The driver's own log lines
// (it prints a lost connection's cause to stderr besides returning
// mysql.ErrInvalidConn) are dropped: a library writes nothing to stderr.
// cfg is not modified. A cfg the driver rejects gives a handle whose
// connections fail with that error.
func Open(cfg *mysql.Config) *sql.DB {
	c := cfg.Clone()
	c.Logger = log.New(io.Discard, "", 0)
	c.ParseTime = true
	c.MultiStatements = false
	c.InterpolateParams = false
	if c.Timeout <= 0 {
		c.Timeout = DefaultConnectTimeout
	}
	conn, err := mysql.NewConnector(c)
	if err != nil {
		return sql.OpenDB(failedConnector{err})
	}
	return sql.OpenDB(conn)
}

// failedConnector reports a configuration error on every connection.
type failedConnector struct{ err error }

func (f failedConnector) Connect(context.Context) (driver.Conn, error) { return nil, f.err }
func (f failedConnector) Driver() driver.Driver                        { return mysql.MySQLDriver{} }
