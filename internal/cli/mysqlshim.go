package cli

// TEMPORARY: stands in for dialect/mysql (wip/mysqldialect) until it
// merges, with the same API (ParseURL, ParseDSN, Open, Dialect), so that
// the CLI's MySQL code compiles and its parsing can be tested. Replaced by
// the real package on merge.

import (
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"

	"github.com/go-sql-driver/mysql"

	"github.com/shiplock/shiplock/dialect"
)

func mysqlParseURL(raw string) (*mysql.Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("invalid URL")
	}
	cfg := mysql.NewConfig()
	cfg.Net = "tcp"
	cfg.Addr = u.Host
	if u.Port() == "" {
		cfg.Addr = net.JoinHostPort(u.Hostname(), "3306")
	}
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.DBName = u.Path
	if len(cfg.DBName) > 0 && cfg.DBName[0] == '/' {
		cfg.DBName = cfg.DBName[1:]
	}
	return cfg, nil
}

func mysqlParseDSN(dsn string) (*mysql.Config, error) { return mysql.ParseDSN(dsn) }

func mysqlOpen(cfg *mysql.Config) *sql.DB {
	c, _ := mysql.NewConnector(cfg)
	return sql.OpenDB(c)
}

func mysqlDialect(table dialect.Table) (dialect.Dialect, error) {
	return nil, fmt.Errorf("the MySQL dialect is not built into this binary yet")
}
