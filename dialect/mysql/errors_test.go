package mysql_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/shiplock/shiplock/dialect"
	"github.com/shiplock/shiplock/dialect/mysql"
	"github.com/shiplock/shiplock/internal/testdb"
)

func TestClassifyValues(t *testing.T) {
	var d mysql.Dialect
	num := func(n uint16) error { return fmt.Errorf("wrapped: %w", &gomysql.MySQLError{Number: n}) }
	for _, tc := range []struct {
		err  error
		want dialect.ErrorClass
	}{
		{num(1045), dialect.Auth},
		{num(1044), dialect.Auth},
		{num(1049), dialect.MissingDatabase},
		{num(1040), dialect.Retryable},
		{num(1053), dialect.Retryable},
		{num(1927), dialect.Retryable},
		{num(1205), dialect.LockConflict},
		{num(1213), dialect.LockConflict},
		{num(1064), dialect.Permanent}, // syntax
		{num(1050), dialect.Permanent}, // table exists
		{num(1969), dialect.Permanent}, // max_statement_time
		{num(1317), dialect.Permanent}, // KILL QUERY
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, dialect.Retryable},
		{&net.DNSError{Err: "no such host", IsNotFound: true}, dialect.Retryable},
		{io.EOF, dialect.Retryable},
		{io.ErrUnexpectedEOF, dialect.Retryable},
		{driver.ErrBadConn, dialect.Retryable},
		{gomysql.ErrInvalidConn, dialect.Retryable},
		{gomysql.ErrNoTLS, dialect.Permanent},
		{errors.New("anything else"), dialect.Permanent},
	} {
		if got := d.Classify(tc.err); got != tc.want {
			t.Errorf("Classify(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// classify connects with cfg and classifies the failure.
func classify(t *testing.T, cfg *gomysql.Config) (error, dialect.ErrorClass) {
	t.Helper()
	db := mysql.Open(cfg)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := db.PingContext(ctx)
	if err == nil {
		t.Fatalf("connecting to %s as %s succeeded", cfg.Addr, cfg.User)
	}
	return err, mysql.Dialect{}.Classify(err)
}

// TestClassifyTLS: TLS asked of a server that does not offer it (or offers
// a certificate nobody trusts) is Permanent. (Wrong password, unknown
// database and a refused port are the conformance suite's Classifier
// part.)
func TestClassifyTLS(t *testing.T) {
	cfg, err := mysql.ParseURL(testdb.MySQL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.TLSConfig = "true"
	if err, class := classify(t, cfg); class != dialect.Permanent {
		t.Errorf("%v: %v, want permanent", err, class)
	}
}

// waitRunning returns once the connection id runs query (polling the
// processlist: the event has no other signal).
func waitRunning(t testing.TB, q dialect.Querier, id int64, prefix string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		var info sql.NullString
		err := q.QueryRowContext(context.Background(), "SELECT INFO FROM information_schema.PROCESSLIST WHERE ID = ?", id).Scan(&info)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			t.Fatal(err)
		}
		if strings.HasPrefix(info.String, prefix) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("connection %d never ran %q", id, prefix)
}

// waitingQuery starts SELECT SLEEP(600) on a connection of db and returns
// its connection id and a channel for its error.
func waitingQuery(t testing.TB, db *sql.DB) (int64, <-chan error) {
	t.Helper()
	c := pin(t, db)
	var id int64
	if err := c.QueryRowContext(context.Background(), "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.ExecContext(context.Background(), "SELECT SLEEP(600)")
		done <- err
	}()
	return id, done
}

// TestClassifyKilledConnection: a connection KILLed from another session
// in the middle of its query fails Retryable.
func TestClassifyKilledConnection(t *testing.T) {
	db := open(t, testdb.MySQL(t))
	id, done := waitingQuery(t, db)
	admin := pin(t, db)
	waitRunning(t, admin, id, "SELECT SLEEP")
	if _, err := admin.ExecContext(context.Background(), fmt.Sprintf("KILL CONNECTION %d", id)); err != nil {
		t.Fatal(err)
	}
	err := <-done
	if class := (mysql.Dialect{}).Classify(err); class != dialect.Retryable {
		t.Fatalf("query of a killed connection: %v (%T), %v; want retryable", err, err, class)
	}
	t.Logf("killed: %v", err)
}

// TestClassifyPrivateServer: on a MariaDB server of the test's own
// (grants in force): a wrong password and a database the user may not use
// are Auth, too many connections is Retryable, and a query waiting while
// the server is killed (SIGKILL) or shut down (SIGTERM) fails Retryable.
func TestClassifyPrivateServer(t *testing.T) {
	s := startMariaDB(t)
	admin := s.open(t, "root", "", "")
	for _, q := range []string{
		"CREATE USER 'app'@'127.0.0.1' IDENTIFIED BY 'right'",
		"CREATE DATABASE appdb",
		"GRANT ALL ON appdb.* TO 'app'@'127.0.0.1'",
	} {
		if _, err := admin.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, tc := range []struct {
		name, user, pass, db string
		want                 dialect.ErrorClass
		number               uint16
	}{
		{"wrong password", "app", "wrong", "appdb", dialect.Auth, 1045},
		{"unknown user", "nobody", "x", "", dialect.Auth, 1045},
		{"database not granted", "app", "right", "mysql", dialect.Auth, 1044},
		{"unknown database", "root", "", "nodb", dialect.MissingDatabase, 1049},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err, class := classify(t, s.config(tc.user, tc.pass, tc.db))
			var me *gomysql.MySQLError
			if class != tc.want || !errors.As(err, &me) || me.Number != tc.number {
				t.Errorf("%v: %v, want %v (error %d)", err, class, tc.want, tc.number)
			}
		})
	}
	t.Run("too many connections", func(t *testing.T) {
		app := mysql.Open(s.config("app", "right", "appdb"))
		app.SetMaxIdleConns(10)
		var (
			conns []*sql.Conn
			err   error
		)
		for range 10 {
			var c *sql.Conn
			if c, err = app.Conn(context.Background()); err != nil {
				break
			}
			conns = append(conns, c)
		}
		for _, c := range conns {
			c.Close()
		}
		app.Close()
		var me *gomysql.MySQLError
		if !errors.As(err, &me) || me.Number != 1040 || (mysql.Dialect{}).Classify(err) != dialect.Retryable {
			t.Errorf("connection %d with max_connections = 4: %v; want 1040, retryable", len(conns)+1, err)
		}
		// The server ends the closed sessions after the client has gone:
		// the next parts need their slots.
		for deadline := time.Now().Add(time.Minute); queryString(t, admin, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'app'") != "0"; {
			if time.Now().After(deadline) {
				t.Fatal("the closed sessions never ended")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run(fmt.Sprint("query while the server gets ", sig), func(t *testing.T) {
			s.start(t)
			db := s.open(t, "app", "right", "appdb")
			id, done := waitingQuery(t, db)
			waitRunning(t, s.open(t, "root", "", ""), id, "SELECT SLEEP")
			s.stop(t, sig)
			err := <-done
			if class := (mysql.Dialect{}).Classify(err); class != dialect.Retryable {
				t.Fatalf("%v (%T): %v, want retryable", err, err, class)
			}
			t.Logf("%s: %v", sig, err)
			// And connecting to the stopped server is retryable too.
			if err, class := classify(t, s.config("app", "right", "appdb")); class != dialect.Retryable {
				t.Fatalf("connect to the stopped server: %v: %v", err, class)
			}
		})
	}
}

// mariaDB is a private mariadbd on a temporary data directory and a free
// loopback port.
type mariaDB struct {
	dir  string
	port int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// startMariaDB initialises a data directory in t.TempDir() and starts a
// server on it; it is killed at the end of the test.
func startMariaDB(t *testing.T) *mariaDB {
	t.Helper()
	install, err := exec.LookPath("mariadb-install-db")
	if err != nil {
		if testdb.Required(os.Getenv(testdb.EnvRequireDB)) {
			t.Fatalf("mariadb-install-db: %v", err)
		}
		t.Skipf("no mariadb-install-db to start a private server: %v", err)
	}
	// Not t.TempDir(): its path, named after the test, can pass the 107
	// bytes a Unix socket's path may have.
	dir, err := os.MkdirTemp("", "shiplock-mariadb-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &mariaDB{dir: dir}
	out, err := exec.Command(install, "--no-defaults", "--datadir="+filepath.Join(dir, "data"), "--user="+currentUser(),
		"--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	s.start(t)
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.cmd != nil {
			s.cmd.Process.Kill()
			<-s.done
		}
	})
	return s
}

func currentUser() string {
	if os.Geteuid() == 0 {
		return "root" // mariadbd runs as root only when told to
	}
	return fmt.Sprint(os.Geteuid())
}

// start starts the server (again) and waits until root can connect.
func (s *mariaDB) start(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	if s.port == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s.port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	bin, err := exec.LookPath("mariadbd")
	if err != nil {
		bin = "/usr/sbin/mariadbd"
	}
	cmd := exec.Command(bin, "--no-defaults", "--datadir="+filepath.Join(s.dir, "data"), "--user="+currentUser(),
		"--bind-address=127.0.0.1", fmt.Sprint("--port=", s.port), "--socket="+filepath.Join(s.dir, "mysqld.sock"),
		"--pid-file="+filepath.Join(s.dir, "mysqld.pid"), "--log-error="+filepath.Join(s.dir, "error.log"),
		"--skip-log-bin", "--innodb-buffer-pool-size=16M", "--max-connections=4", "--skip-name-resolve")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(s.done)
	db := mysql.Open(s.config("root", "", ""))
	defer db.Close()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := db.PingContext(ctx)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-s.done:
			log, _ := os.ReadFile(filepath.Join(s.dir, "error.log"))
			t.Fatalf("mariadbd exited: %s", log)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("mariadbd on port %d not ready: %v", s.port, err)
		}
	}
}

// stop sends sig to the server, by its PID, and waits for it to exit.
func (s *mariaDB) stop(t testing.TB, sig syscall.Signal) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	<-s.done
	s.cmd = nil
}

func (s *mariaDB) config(user, pass, db string) *gomysql.Config {
	cfg := gomysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.DBName = user, pass, db
	cfg.Net, cfg.Addr = "tcp", fmt.Sprint("127.0.0.1:", s.port)
	return cfg
}

func (s *mariaDB) open(t testing.TB, user, pass, db string) *sql.DB {
	t.Helper()
	h := mysql.Open(s.config(user, pass, db))
	t.Cleanup(func() { h.Close() })
	return h
}
