package testdb

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shiplock/shiplock/internal/redact"
)

// Server is a PostgreSQL server that tests create databases and roles on:
// the shared one ([PostgresServer]) or one a test owns ([OwnPostgres]).
// Its methods are safe for concurrent use.
type Server struct {
	// Host and Port are where the server listens on TCP (for an ephemeral
	// cluster, 127.0.0.1 and a random free port).
	Host string
	Port int
	// AdminURL is a superuser URL of the maintenance database "postgres".
	// It may hold a password (from SHIPLOCK_TEST_POSTGRES_URL): print it
	// through redact.URL.
	AdminURL string
	// SocketDir is the directory of the server's Unix socket, and DataDir
	// its data directory; both are empty for a server given by
	// SHIPLOCK_TEST_POSTGRES_URL.
	SocketDir string
	DataDir   string
	// StartupTime is how long initdb and the first start took; zero for a
	// server given by SHIPLOCK_TEST_POSTGRES_URL.
	StartupTime time.Duration

	admin   *url.URL
	cluster *cluster // nil for an external server
	owned   bool     // owned by one test: Stop, Start and Crash allowed

	poolOnce sync.Once
	pool     *pgxpool.Pool
	poolErr  error

	passwordOnce sync.Once
	passwordErr  error // why password authentication cannot be tested
}

// Role is a login role with a password, created by [Server.CreateRole].
type Role struct {
	Name     string
	Password string
}

// shared is the process's one shared server.
var shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// Postgres returns the URL of a new, empty database on the shared server (see
// [PostgresServer]), connecting as the superuser. The database is dropped, WITH
// (FORCE), when the test and its subtests have finished.
func Postgres(t testing.TB) string {
	t.Helper()
	s := PostgresServer(t)
	return s.URL(s.CreateDatabase(t, ""), "", "")
}

// PostgresServer returns the server that [Postgres] creates databases on: the
// one at SHIPLOCK_TEST_POSTGRES_URL if set, otherwise an ephemeral cluster
// started on first use and shared by all the tests of the binary, which
// requires [Main]. Tests must not stop it; use [OwnPostgres] for that. The
// test is skipped (or failed, see the package documentation) when there is
// no server.
func PostgresServer(t testing.TB) *Server {
	t.Helper()
	shared.once.Do(func() {
		shared.srv, shared.err = openShared(os.Getenv, findBindir)
	})
	if shared.err != nil {
		report(t, os.Getenv, shared.err)
	}
	return shared.srv
}

// errNoMain is the error for an ephemeral cluster that nothing would stop.
var errNoMain = errors.New("testdb: the ephemeral PostgreSQL cluster needs testdb.Main: " +
	"add `func TestMain(m *testing.M) { testdb.Main(m) }` to this package's tests, or set " + EnvPostgresURL)

// openShared opens the server at EnvPostgresURL or, without it, starts an
// ephemeral cluster with the binaries in the directory bindir finds.
func openShared(getenv func(string) string, bindir func() (string, error)) (*Server, error) {
	if u := getenv(EnvPostgresURL); u != "" {
		return openExternal(u)
	}
	dir, err := bindir()
	if err != nil {
		return nil, err
	}
	if !mainRan.Load() {
		return nil, errNoMain
	}
	return startEphemeral(dir, false)
}

// openExternal returns the server at the superuser URL raw, after checking
// that it answers.
func openExternal(raw string) (*Server, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return nil, fmt.Errorf("testdb: %s=%q: want a URL postgres://user:password@host:port/db",
			EnvPostgresURL, redact.URL(raw))
	}
	port := 5432
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("testdb: %s: bad port %q", EnvPostgresURL, p)
		}
	}
	s := &Server{Host: u.Hostname(), Port: port, AdminURL: raw, admin: u}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := s.adminPool()
	if err == nil {
		err = pool.Ping(ctx)
	}
	if err != nil {
		s.close()
		return nil, fmt.Errorf("testdb: %s=%s: %v", EnvPostgresURL, redact.URL(raw), redact.URL(err.Error()))
	}
	return s, nil
}

// startEphemeral initdb's and starts a cluster.
func startEphemeral(bindir string, owned bool) (*Server, error) {
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := newCluster(ctx, bindir, owned)
	if err != nil {
		return nil, err
	}
	if err := c.start(ctx); err != nil {
		c.destroy()
		return nil, err
	}
	u, err := url.Parse(c.adminURL("postgres"))
	if err != nil {
		c.destroy()
		return nil, err
	}
	return &Server{
		Host:        "127.0.0.1",
		Port:        c.port,
		AdminURL:    u.String(),
		SocketDir:   c.dir,
		DataDir:     c.dataDir(),
		StartupTime: time.Since(begin),
		admin:       u,
		cluster:     c,
		owned:       owned,
	}, nil
}

// shutdownShared closes the shared server's pool and stops its cluster.
func shutdownShared() {
	if shared.srv == nil {
		return
	}
	if err := shared.srv.close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
}

// close closes the admin pool and destroys the cluster, if any.
func (s *Server) close() error {
	if s.pool != nil {
		s.pool.Close()
	}
	if s.cluster != nil {
		return s.cluster.destroy()
	}
	return nil
}

// OwnPostgres starts a new ephemeral cluster for this test alone, which the
// test may Stop, Crash and Start; it is destroyed when the test ends. It does
// not need [Main]. Unlike the shared cluster it runs with synchronous_commit
// on, so a transaction whose commit returned survives Crash. It ignores SHIPLOCK_TEST_POSTGRES_URL, and skips (or fails)
// the test when no PostgreSQL binaries are installed. Each call costs an
// initdb and a start, about a second and a half.
func OwnPostgres(t testing.TB) *Server {
	t.Helper()
	dir, err := findBindir()
	if err != nil {
		report(t, os.Getenv, err)
	}
	s, err := startEphemeral(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// URL returns the URL of database db on the server for user and password.
// An empty user means the superuser, with the superuser's password; an empty
// password means none. Neither db nor the role need exist, so tests can
// build URLs for a wrong password or a missing database. Query parameters of
// AdminURL (sslmode, ...) are kept.
func (s *Server) URL(db, user, password string) string {
	u := *s.admin
	switch {
	case user == "":
		// Keep the superuser and its password.
	case password == "":
		u.User = url.User(user)
	default:
		u.User = url.UserPassword(user, password)
	}
	u.Path = "/" + db
	u.RawPath = ""
	return u.String()
}

// adminPool returns the server's superuser connection pool, opened on first
// use.
func (s *Server) adminPool() (*pgxpool.Pool, error) {
	s.poolOnce.Do(func() {
		s.pool, s.poolErr = pgxpool.New(context.Background(), s.AdminURL)
		if s.poolErr != nil {
			s.poolErr = fmt.Errorf("testdb: admin pool: %v", redact.URL(s.poolErr.Error()))
		}
	})
	return s.pool, s.poolErr
}

// exec runs one statement as the superuser.
func (s *Server) exec(ctx context.Context, sql string) error {
	pool, err := s.adminPool()
	if err != nil {
		return err
	}
	_, err = pool.Exec(ctx, sql)
	return err
}

// CreateDatabase creates a new, empty database from template0, owned by owner
// (the superuser if empty), and returns its name, unique to this call and
// derived from the test's name. It is dropped WITH (FORCE) when the test and
// its subtests have finished.
func (s *Server) CreateDatabase(t testing.TB, owner string) string {
	t.Helper()
	name := uniqueName("t_", t.Name())
	sql := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize() + " TEMPLATE template0"
	if owner != "" {
		sql += " OWNER " + pgx.Identifier{owner}.Sanitize()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.exec(ctx, sql); err != nil {
		t.Fatalf("testdb: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if s.dropsWithCluster() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("testdb: drop database %s: %v", name, err)
		}
	})
	return name
}

// dropsWithCluster reports whether objects need no dropping because the
// server is a test's own and stopped: it is destroyed at the end of the test
// anyway, and the test may well end with it stopped.
func (s *Server) dropsWithCluster() bool {
	return s.owned && !s.cluster.running()
}

// CreateRole creates a login role, not a superuser, with a random password,
// and drops it when the test ends (after the databases created later in the
// test, so a role may own one: s.CreateDatabase(t, role.Name)). The server
// enforces the password: a wrong or missing one fails authentication with
// SQLSTATE 28P01. A server that does not (one given by
// SHIPLOCK_TEST_POSTGRES_URL whose pg_hba.conf trusts everyone) skips the
// test, or fails it under SHIPLOCK_TEST_REQUIRE_DB.
func (s *Server) CreateRole(t testing.TB) Role {
	t.Helper()
	r := Role{Name: uniqueName("r_", t.Name()), Password: randomHex(12)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The password is hex: nothing to escape.
	sql := "CREATE ROLE " + pgx.Identifier{r.Name}.Sanitize() + " LOGIN PASSWORD '" + r.Password + "'"
	if err := s.exec(ctx, sql); err != nil {
		t.Fatalf("testdb: create role %s: %v", r.Name, err)
	}
	t.Cleanup(func() {
		if s.dropsWithCluster() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{r.Name}.Sanitize()); err != nil {
			t.Errorf("testdb: drop role %s: %v", r.Name, err)
		}
	})
	s.passwordOnce.Do(func() { s.passwordErr = s.checkPasswordEnforced(ctx, r) })
	if s.passwordErr != nil {
		report(t, os.Getenv, s.passwordErr)
	}
	return r
}

// checkPasswordEnforced connects as r with a wrong password, which must fail
// with invalid_password.
func (s *Server) checkPasswordEnforced(ctx context.Context, r Role) error {
	conn, err := pgx.Connect(ctx, s.URL("postgres", r.Name, r.Password+"-wrong"))
	if err == nil {
		conn.Close(ctx)
		return &unavailableError{fmt.Sprintf(
			"testdb: the server at %s does not enforce passwords for ordinary roles; "+
				"point it at one that does (pg_hba.conf method scram-sha-256 or md5)", EnvPostgresURL)}
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
		return fmt.Errorf("testdb: check password authentication: %v", redact.URL(err.Error()))
	}
	return nil
}

// Stop shuts the server down (fast shutdown: open connections are closed)
// and returns when it has exited. Only a server from [OwnPostgres] can be
// stopped. Stopping a stopped server does nothing.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.stop(t, syscall.SIGINT)
}

// Crash stops the server the way a crash would (immediate shutdown, no
// checkpoint): the next Start runs crash recovery. Only a server from
// [OwnPostgres] can be crashed.
func (s *Server) Crash(t testing.TB) {
	t.Helper()
	s.stop(t, syscall.SIGQUIT)
}

func (s *Server) stop(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if !s.owned {
		t.Fatal("testdb: only a server from OwnPostgres can be stopped")
	}
	if err := s.cluster.stop(sig); err != nil {
		t.Fatal(err)
	}
	if pool, err := s.adminPool(); err == nil {
		pool.Reset() // its connections are dead
	}
}

// Start starts a stopped server on the same port and returns when it
// accepts connections. Only a server from [OwnPostgres] can be started.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	if !s.owned {
		t.Fatal("testdb: only a server from OwnPostgres can be started")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.cluster.start(ctx); err != nil {
		t.Fatal(err)
	}
}
