package cli

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	mysqldialect "github.com/shiplock/shiplock/dialect/mysql"
	"github.com/shiplock/shiplock/internal/redact"
)

// errEncodeMySQLPassword says how to fix a mysql:// URL whose password is
// not percent-encoded, without repeating it.
const errEncodeMySQLPassword = "the user name and password in a mysql:// URL must be percent-encoded: " +
	"write @ as %40, / as %2F, # as %23, ? as %3F, : as %3A and % as %25, " +
	"or leave the password out of the URL and set MYSQL_PWD"

// parseMySQL parses a mysql:// URL or a go-sql-driver DSN. The user and
// password the string leaves out come from MYSQL_USER and MYSQL_PWD (the
// mysql client's variable for the password; the user's is the name the
// mysql and mariadb images use). goose's -certfile, -ssl-cert and -ssl-key
// become the connection's TLS configuration, as goose registers them with
// the driver. No error repeats the password.
func (g *globals) parseMySQL(raw string) (target, error) {
	scheme, rest, isURL := strings.Cut(raw, "://")
	isURL = isURL && schemeRE.MatchString(scheme) // else "://" is in a DSN's password
	parse := mysqldialect.ParseDSN
	if isURL && strings.EqualFold(scheme, "mariadb") {
		raw = "mysql://" + rest
	}
	if isURL {
		parse = mysqldialect.ParseURL
		host := raw[strings.LastIndexByte(raw, '@')+1:]
		if strings.ContainsAny(host, "${}`") {
			return target{}, usagef("the database URL's host looks like a variable nothing substituted: the shell or manifest that sets DATABASE_URL must expand it")
		}
		if redact.URLPasswordNeedsEncoding(raw) {
			return target{}, usagef(errEncodeMySQLPassword)
		}
	}
	cfg, err := parse(raw)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // url.Error quotes the URL, password and all
		}
		msg := "parse the MySQL connection string: " + g.redact(err.Error())
		if !isURL {
			msg += "; want a DSN such as app@tcp(db:3306)/accounts (with the password after app:) or a URL such as mysql://app@db:3306/accounts"
		}
		return target{}, usagef(msg)
	}
	if cfg.DBName == "" {
		// Without one, reads find no goose_db_version (everything looks
		// pending) and up fails only at the lock, which is per database.
		return target{}, usagef("the MySQL connection string names no database: add it after the address, as in mysql://app@db:3306/accounts or app@tcp(db:3306)/accounts")
	}
	t := target{dialect: "mysql", conn: raw, my: cfg}
	if cfg.User == "" {
		if u := g.streams.getenv("MYSQL_USER"); u != "" {
			cfg.User, t.myUser = u, "MYSQL_USER"
		}
	}
	if cfg.Passwd == "" {
		if pw := g.streams.getenv("MYSQL_PWD"); pw != "" {
			cfg.Passwd, t.myPassword = pw, "MYSQL_PWD"
		}
	}
	g.sec.Add(cfg.Passwd)
	if strings.ContainsAny(cfg.Addr, "${}`") {
		return target{}, usagef(fmt.Sprintf("database address %q looks like a variable nothing substituted: the shell or manifest that sets the database must expand it", g.redact(cfg.Addr)))
	}
	if g.tls.set() {
		tc, err := g.tls.mysqlConfig(cfg.Addr)
		if err != nil {
			return target{}, err
		}
		cfg.TLS = tc
	}
	return t, nil
}

// mysqlConfig is what goose's CLI registers with the MySQL driver for
// -certfile (the CA certificates that verify the server), -ssl-cert and
// -ssl-key (a client certificate): TLS to the server at addr, verified.
func (t tlsFiles) mysqlConfig(addr string) (*tls.Config, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if t.rootCert != "" {
		pem, err := os.ReadFile(t.rootCert)
		if err != nil {
			return nil, usagef(fmt.Sprintf("--certfile: %v", errors.Unwrap(err)))
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, usagef(fmt.Sprintf("--certfile %s: no PEM certificate in it", t.rootCert))
		}
	}
	if (t.cert == "") != (t.key == "") {
		return nil, usagef("--ssl-cert and --ssl-key go together: the client certificate and its key")
	}
	if t.cert != "" {
		pair, err := tls.LoadX509KeyPair(t.cert, t.key)
		if err != nil {
			return nil, usagef(fmt.Sprintf("--ssl-cert %s, --ssl-key %s: %v", t.cert, t.key, err))
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}
