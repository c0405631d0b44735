package redact_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shiplock/shiplock/internal/redact"
	"github.com/shiplock/shiplock/internal/testdb"
)

// canaryPassword needs URL encoding, so both of its spellings are checked.
const canaryPassword = "Canary-p@ss/w0rd"

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// assertNoCanary checks that text holds the canary password in none of its
// spellings.
func assertNoCanary(t *testing.T, where, text string) {
	t.Helper()
	assertNone(t, where, text, canaryPassword, url.QueryEscape(canaryPassword), url.PathEscape(canaryPassword), "Canary-p")
}

// assertNoCanaryHalf checks that text holds no part of the canary after its
// '@' either: a password masked only up to the '@' leaks the rest.
func assertNoCanaryHalf(t *testing.T, where, text string) {
	t.Helper()
	assertNoCanary(t, where, text)
	assertNone(t, where, text, "ss/w0rd", "ss%2Fw0rd")
}

func assertNone(t *testing.T, where, text string, spellings ...string) {
	t.Helper()
	for _, spelling := range spellings {
		if strings.Contains(text, spelling) {
			t.Errorf("%s leaks %q:\n%s", where, spelling, text)
		}
	}
}

// checkRedacted runs err's text through every redaction path: Secrets.String,
// Secrets.Err, the slog Handler and the Writer.
func checkRedacted(t *testing.T, secrets *redact.Secrets, err error) {
	t.Helper()
	assertNoCanaryHalf(t, "Secrets.String", secrets.String(err.Error()))
	assertNoCanaryHalf(t, "Secrets.Err", secrets.Err(err).Error())

	var logs bytes.Buffer
	l := slog.New(redact.Handler(slog.NewTextHandler(&logs, nil), secrets))
	l.Error("connect failed", "err", err)
	l.Error("connect failed: " + err.Error())
	assertNoCanaryHalf(t, "Handler", logs.String())

	var out bytes.Buffer
	w := redact.NewWriter(&out, secrets)
	fmt.Fprintf(w, "shiplock: %v\n", err)
	assertNoCanaryHalf(t, "Writer", out.String())
}

// TestCanaryPgxConnectError: pgx keeps the password out of its own errors, but
// shiplock's wrapping errors quote the DSN they were given.
func TestCanaryPgxConnectError(t *testing.T) {
	addr := closedPort(t)
	encoded := url.UserPassword("shiplock", canaryPassword).String()
	tests := []struct {
		name string
		dsn  string
	}{
		{"url", "postgres://" + encoded + "@" + addr + "/db?connect_timeout=2"},
		{"url with query password", "postgres://shiplock@" + addr + "/db?connect_timeout=2&password=" + url.QueryEscape(canaryPassword)},
		{"keywords", "host=127.0.0.1 port=" + addr[strings.LastIndexByte(addr, ':')+1:] + " user=shiplock password='" + canaryPassword + "' connect_timeout=2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			conn, err := pgx.Connect(ctx, tt.dsn)
			if err == nil {
				conn.Close(ctx)
				t.Fatal("connected to a closed port")
			}
			// What pgx says itself.
			assertNoCanary(t, "pgx error", err.Error())
			wrapped := fmt.Errorf("wait for %s: %w", tt.dsn, err)

			// Structural redaction alone, with no known secrets...
			checkRedacted(t, nil, wrapped)
			// ...and with the password known from the DSN.
			var secrets redact.Secrets
			secrets.AddDSN(tt.dsn)
			checkRedacted(t, &secrets, wrapped)
			// The password repeated outside any DSN needs the known secret.
			bare := fmt.Errorf("password %q rejected: %w", canaryPassword, wrapped)
			checkRedacted(t, &secrets, bare)
		})
	}
}

func TestCanaryPgxParseError(t *testing.T) {
	dsn := "postgres://shiplock:" + url.PathEscape(canaryPassword) + "@h:notaport/db"
	_, err := pgx.ParseConfig(dsn)
	if err == nil {
		t.Fatal("parsed an invalid port")
	}
	assertNoCanary(t, "pgx error", err.Error())
	checkRedacted(t, redact.NewSecrets(canaryPassword), fmt.Errorf("parse %q: %w", dsn, err))
}

// TestCanaryPgxAuthFailure: the errors a real server causes, a rejected
// password and a missing database, wrapped the way shiplock wraps them.
func TestCanaryPgxAuthFailure(t *testing.T) {
	s := testdb.PostgresServer(t)
	role := s.CreateRole(t)
	db := s.CreateDatabase(t, role.Name)
	tests := []struct {
		name, dsn, sqlState string
	}{
		{"wrong password", s.URL(db, role.Name, canaryPassword), "28P01"},
		{"missing database", s.URL("no_such_db_"+url.PathEscape(canaryPassword), role.Name, role.Password), "3D000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			conn, err := pgx.Connect(ctx, tt.dsn)
			if err == nil {
				conn.Close(ctx)
				t.Fatal("connected")
			}
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != tt.sqlState {
				t.Fatalf("want SQLSTATE %s, got %v", tt.sqlState, err)
			}
			wrapped := fmt.Errorf("connect %s: %w", tt.dsn, err)
			var secrets redact.Secrets
			secrets.AddDSN(tt.dsn)
			secrets.Add(canaryPassword)
			if tt.name == "wrong password" {
				assertNoCanary(t, "pgx error", err.Error())
				checkRedacted(t, nil, wrapped)
			}
			// A missing database named after the password: only the known
			// secret hides it where the server echoes the name.
			checkRedacted(t, &secrets, wrapped)
			if !strings.Contains(secrets.String(wrapped.Error()), tt.sqlState) {
				t.Errorf("redaction removed the SQLSTATE: %s", secrets.String(wrapped.Error()))
			}
		})
	}
}

// TestCanaryEnvsubStatementError: a statement that holds a secret expanded
// by ENVSUB fails, and the server echoes the secret in its error. Only the
// secret known by its variable's name (as the CLI adds it) hides it, in the
// error and in a plan-like print of the statement itself.
func TestCanaryEnvsubStatementError(t *testing.T) {
	url := testdb.Postgres(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	env := map[string]string{"APP_DB_PASSWORD": canaryPassword, "APP_SCHEMA": "public"}
	secrets := redact.NewSecrets()
	for name, v := range env {
		if redact.IsSecretEnvName(name) {
			secrets.Add(v)
		}
	}
	stmt := `SELECT * FROM "missing_` + env["APP_DB_PASSWORD"] + `"`
	_, err = conn.Exec(ctx, stmt)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42P01" {
		t.Fatalf("want undefined_table, got %v", err)
	}
	wrapped := fmt.Errorf("00001_a.sql:3: apply version 1: statement %q: %w", stmt, err)
	checkRedacted(t, secrets, wrapped)
	assertNoCanary(t, "plan", secrets.String(stmt+";\nCREATE ROLE app PASSWORD '"+env["APP_DB_PASSWORD"]+"';"))
	if got := secrets.String("SET search_path = " + env["APP_SCHEMA"]); !strings.Contains(got, "public") {
		t.Errorf("a variable that is not secret was masked: %s", got)
	}
}

// TestCanaryMySQLConnectError: go-sql-driver's own errors, for a closed
// port and for a password the server rejects (1045), and shiplock's
// wrapping errors that quote the DSN or URL they were given, in both of
// MySQL's spellings: go-sql-driver's DSN (where the password may hold '@',
// ':' and '/' unencoded) and a mysql:// URL.
func TestCanaryMySQLConnectError(t *testing.T) {
	closed := closedPort(t)
	server, err := url.Parse(testdb.MySQL(t))
	if err != nil {
		t.Fatal(err)
	}
	user := server.User.Username()
	tests := []struct {
		name, addr string
		code       uint16 // the server's error number, 0 for a network error
	}{
		{"closed port", closed, 0},
		{"wrong password", server.Host, 1045},
	}
	for _, tt := range tests {
		for _, form := range []string{"dsn", "url"} {
			t.Run(tt.name+" "+form, func(t *testing.T) {
				dsn := user + ":" + canaryPassword + "@tcp(" + tt.addr + ")/db?timeout=2s"
				shown := dsn
				if form == "url" {
					shown = "mysql://" + url.UserPassword(user, canaryPassword).String() + "@" + tt.addr + "/db"
				}
				cfg, err := mysql.ParseDSN(dsn)
				if err != nil {
					t.Fatal(err)
				}
				if cfg.Passwd != canaryPassword {
					t.Fatalf("the driver read the password as %q", cfg.Passwd)
				}
				connector, err := mysql.NewConnector(cfg)
				if err != nil {
					t.Fatal(err)
				}
				db := sql.OpenDB(connector)
				defer db.Close()
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				defer cancel()
				err = db.PingContext(ctx)
				if err == nil {
					t.Fatal("connected")
				}
				var myErr *mysql.MySQLError
				if tt.code != 0 && (!errors.As(err, &myErr) || myErr.Number != tt.code) {
					t.Fatalf("want error %d, got %v", tt.code, err)
				}
				// What the driver says itself.
				assertNoCanary(t, "driver error", err.Error())
				wrapped := fmt.Errorf("wait for %s: %w", shown, err)
				// Structural redaction alone, and with the password known
				// from the string.
				checkRedacted(t, nil, wrapped)
				var secrets redact.Secrets
				secrets.AddDSN(shown)
				checkRedacted(t, &secrets, wrapped)
				checkRedacted(t, &secrets, fmt.Errorf("password %q rejected: %w", canaryPassword, wrapped))
			})
		}
	}
}
