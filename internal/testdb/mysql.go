package testdb

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/shiplock/shiplock/internal/redact"
)

// defaultMySQLURL is tried when EnvMySQLURL is unset.
const defaultMySQLURL = "mysql://root@127.0.0.1:3306/"

// mysqlShared is the process's one MySQL admin connection pool.
var mysqlShared struct {
	once sync.Once
	base *url.URL // server URL, without a database
	db   *sql.DB
	err  error
}

// MySQL returns the URL, mysql://user:password@host:port/name, of a new,
// empty database (character set utf8mb4) on the server at
// SHIPLOCK_TEST_MYSQL_URL, or at mysql://root@127.0.0.1:3306/ when that is
// unset. The database is dropped when the test and its subtests have
// finished. The test is skipped (or failed, see the package documentation)
// when the variable is unset and the default server does not answer; a server
// named by the variable that does not answer fails the test.
func MySQL(t testing.TB) string {
	t.Helper()
	mysqlShared.once.Do(func() {
		mysqlShared.base, mysqlShared.db, mysqlShared.err = openMySQL(os.Getenv)
	})
	if mysqlShared.err != nil {
		report(t, os.Getenv, mysqlShared.err)
	}
	name := uniqueName("t_", t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := mysqlShared.db.ExecContext(ctx, "CREATE DATABASE "+quoteMySQL(name)+" CHARACTER SET utf8mb4"); err != nil {
		t.Fatalf("testdb: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := mysqlShared.db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+quoteMySQL(name)); err != nil {
			t.Errorf("testdb: drop database %s: %v", name, err)
		}
	})
	u := *mysqlShared.base
	u.Path = "/" + name
	return u.String()
}

// openMySQL opens and pings the server at EnvMySQLURL or the default URL.
func openMySQL(getenv func(string) string) (*url.URL, *sql.DB, error) {
	raw, configured := getenv(EnvMySQLURL), true
	if raw == "" {
		raw, configured = defaultMySQLURL, false
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "mysql" || u.Host == "" {
		return nil, nil, fmt.Errorf("testdb: %s=%q: want a URL mysql://user:password@host:port/",
			EnvMySQLURL, redact.URL(raw))
	}
	db, err := sql.Open("mysql", mysqlDSN(u))
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err = db.PingContext(ctx); err != nil {
			db.Close()
		}
	}
	if err != nil {
		msg := redact.URL(err.Error())
		if !configured {
			return nil, nil, &unavailableError{fmt.Sprintf(
				"testdb: no MySQL server: set %s (tried %s: %s)", EnvMySQLURL, raw, msg)}
		}
		return nil, nil, fmt.Errorf("testdb: %s=%s: %s", EnvMySQLURL, redact.URL(raw), msg)
	}
	u.Path = "/"
	return u, db, nil
}

// mysqlDSN returns the go-sql-driver DSN of the server at u, without a
// database.
func mysqlDSN(u *url.URL) string {
	cfg := mysql.NewConfig()
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.Net = "tcp"
	cfg.Addr = u.Host
	if u.Port() == "" {
		cfg.Addr = net.JoinHostPort(u.Hostname(), "3306")
	}
	cfg.Timeout = 5 * time.Second
	return cfg.FormatDSN()
}

// quoteMySQL quotes a MySQL identifier.
func quoteMySQL(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}
