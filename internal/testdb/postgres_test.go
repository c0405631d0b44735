package testdb

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

func TestPostgresParallel(t *testing.T) {
	s := PostgresServer(t)
	t.Logf("server %s:%d, started in %v", s.Host, s.Port, s.StartupTime)
	var names sync.Map
	for i := range 8 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			begin := time.Now()
			dsn := Postgres(t)
			t.Logf("database created in %v", time.Since(begin))
			u, err := url.Parse(dsn)
			if err != nil {
				t.Fatal(err)
			}
			name := strings.TrimPrefix(u.Path, "/")
			if _, dup := names.LoadOrStore(name, true); dup {
				t.Fatalf("database name %s given twice", name)
			}
			conn := connect(t, dsn)
			ctx := t.Context()
			var current string
			var tables int
			if err := conn.QueryRow(ctx, "SELECT current_database(), (SELECT count(*) FROM pg_tables WHERE schemaname = 'public')").Scan(&current, &tables); err != nil {
				t.Fatal(err)
			}
			if current != name || tables != 0 {
				t.Errorf("connected to %s with %d tables, want the empty %s", current, tables, name)
			}
			// Every test creates the same table: they cannot collide.
			if _, err := conn.Exec(ctx, "CREATE TABLE goose_db_version (id int)"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestPostgresDroppedAfterTest(t *testing.T) {
	var name string
	t.Run("inner", func(t *testing.T) {
		u, err := url.Parse(Postgres(t))
		if err != nil {
			t.Fatal(err)
		}
		name = strings.TrimPrefix(u.Path, "/")
		// An open connection must not keep the database alive.
		connect(t, u.String())
	})
	admin := connect(t, PostgresServer(t).AdminURL)
	var exists bool
	if err := admin.QueryRow(t.Context(), "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("database %s still exists after its test", name)
	}
}

func TestCreateRolePasswordEnforced(t *testing.T) {
	t.Parallel()
	s := PostgresServer(t)
	role := s.CreateRole(t)
	db := s.CreateDatabase(t, role.Name)

	conn := connect(t, s.URL(db, role.Name, role.Password))
	// The role owns the database, so it can migrate it.
	if _, err := conn.Exec(t.Context(), "CREATE TABLE t (id int)"); err != nil {
		t.Errorf("owner cannot create a table: %v", err)
	}

	tests := []struct {
		name      string
		dsn       string
		wantState string // SQLSTATE; "" for any error
	}{
		{"wrong password", s.URL(db, role.Name, "wrong-"+role.Password), "28P01"},
		{"no password", s.URL(db, role.Name, ""), ""},
		{"missing database", s.URL("no_such_database", role.Name, role.Password), "3D000"},
		{"missing role", s.URL(db, "no_such_role", "pw"), "28P01"},
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
			if tt.wantState != "" && sqlState(err) != tt.wantState {
				t.Errorf("error %v: SQLSTATE %q, want %q", err, sqlState(err), tt.wantState)
			}
			if strings.Contains(err.Error(), role.Password) {
				t.Errorf("pgx error shows the password: %v", err)
			}
		})
	}
}

func TestServerURL(t *testing.T) {
	s := &Server{}
	s.admin, _ = url.Parse("postgres://admin:adminpw@127.0.0.1:5432/postgres?sslmode=disable")
	tests := []struct {
		db, user, password, want string
	}{
		{"d", "", "", "postgres://admin:adminpw@127.0.0.1:5432/d?sslmode=disable"},
		{"d", "u", "", "postgres://u@127.0.0.1:5432/d?sslmode=disable"},
		{"d", "u", "p@ss/w:rd", "postgres://u:p%40ss%2Fw%3Ard@127.0.0.1:5432/d?sslmode=disable"},
	}
	for _, tt := range tests {
		if got := s.URL(tt.db, tt.user, tt.password); got != tt.want {
			t.Errorf("URL(%q, %q, %q) = %q, want %q", tt.db, tt.user, tt.password, got, tt.want)
		}
	}
}

func TestOwnPostgresStopStartCrash(t *testing.T) {
	t.Parallel()
	s := OwnPostgres(t)
	t.Logf("own cluster on port %d started in %v", s.Port, s.StartupTime)
	if s == PostgresServer(t) {
		t.Fatal("OwnPostgres returned the shared server")
	}
	role := s.CreateRole(t)
	db := s.CreateDatabase(t, role.Name)
	dsn := s.URL(db, role.Name, role.Password)
	ctx := t.Context()

	conn := connect(t, dsn)
	if _, err := conn.Exec(ctx, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}

	begin := time.Now()
	s.Stop(t)
	t.Logf("stopped in %v", time.Since(begin))
	if err := conn.Ping(ctx); err == nil {
		t.Error("old connection still works after Stop")
	}
	if c, err := pgx.Connect(ctx, dsn); err == nil {
		c.Close(ctx)
		t.Fatal("connected to a stopped server")
	}
	s.Stop(t) // stopping twice does nothing

	begin = time.Now()
	s.Start(t)
	t.Logf("restarted in %v", time.Since(begin))
	conn = connect(t, dsn)
	if _, err := conn.Exec(ctx, "INSERT INTO t VALUES (2)"); err != nil {
		t.Fatal(err)
	}

	s.Crash(t)
	begin = time.Now()
	s.Start(t)
	t.Logf("recovered from crash in %v", time.Since(begin))
	var n int
	if err := connect(t, dsn).QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("after crash: %d rows, want the 2 committed ones", n)
	}

	// Ending the test with the server stopped must not fail the cleanups
	// that drop the database and the role.
	s.Stop(t)
}

func TestSharedServerCannotBeStopped(t *testing.T) {
	s := PostgresServer(t)
	for name, stop := range map[string]func(testing.TB){"Stop": s.Stop, "Crash": s.Crash, "Start": s.Start} {
		f := &fakeTB{}
		f.run(stop)
		if !f.failed {
			t.Errorf("%s on the shared server did not fail the test", name)
		}
	}
	// Still up.
	connect(t, s.AdminURL)
}
