package testdb

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// PoolMode is PgBouncer's pool_mode.
type PoolMode string

const (
	// PoolTransaction hands a server connection to a client for one
	// transaction only: session state (advisory locks, SET, LISTEN,
	// prepared statements) does not follow the client.
	PoolTransaction PoolMode = "transaction"
	// PoolSession pins one server connection to each client connection.
	PoolSession PoolMode = "session"
)

// Bouncer is a PgBouncer process in front of a test server.
type Bouncer struct {
	// Port is where it listens, on 127.0.0.1.
	Port int
	Mode PoolMode
	// PID is the pgbouncer process id.
	PID int

	user, password string
}

// URL returns the URL of database db through the bouncer, as the server's
// superuser (PgBouncer logs in to the server with the credentials of its
// [databases] entry).
func (b *Bouncer) URL(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", b.user, b.Port, db)
}

// PgBouncer starts a PgBouncer (Debian's pgbouncer binary, found in PATH or
// /usr/sbin) in front of s, in pool mode mode with poolSize server
// connections per database and user (default_pool_size), on a free
// loopback port. Clients need no password (auth_type any): the bouncer
// logs in as s's superuser. It is stopped, by its PID, when the test ends.
// A machine without pgbouncer skips the test, or fails it under
// SHIPLOCK_TEST_REQUIRE_DB.
func (s *Server) PgBouncer(t testing.TB, mode PoolMode, poolSize int) *Bouncer {
	t.Helper()
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/pgbouncer"); serr != nil {
			report(t, os.Getenv, &unavailableError{msg: "testdb: pgbouncer is not installed (apt-get install pgbouncer)"})
		}
		bin = "/usr/sbin/pgbouncer"
	}
	user := s.admin.User.Username()
	if user == "" {
		user = adminUser
	}
	password, _ := s.admin.User.Password()
	b := &Bouncer{Mode: mode, user: user, password: password}

	dir, err := os.MkdirTemp(socketParent(), "shiplock-pgbouncer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		// PgBouncer refuses to run as root.
		if cred, err = lookupCredential(adminUser); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	host := s.Host
	if host == "" || host == "localhost" {
		host = "127.0.0.1"
	}
	server := fmt.Sprintf("host=%s port=%d user=%s", host, s.Port, user)
	if password != "" {
		server += " password=" + password
	}
	for attempt := 0; ; attempt++ {
		if b.Port, err = freePort(); err != nil {
			t.Fatal(err)
		}
		ini := fmt.Sprintf(`[databases]
* = %s
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = any
pool_mode = %s
default_pool_size = %d
max_client_conn = 1000
max_db_connections = 0
ignore_startup_parameters = extra_float_digits
server_reset_query = DISCARD ALL
logfile = %s
pidfile =
`, server, b.Port, mode, poolSize, filepath.Join(dir, "pgbouncer.log"))
		conf := filepath.Join(dir, "pgbouncer.ini")
		if err := os.WriteFile(conf, []byte(ini), 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := startBouncer(bin, conf, cred)
		if err != nil {
			t.Fatal(err)
		}
		b.PID = p.cmd.Process.Pid
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = waitReady(ctx, b.URL("postgres"), p)
		cancel()
		if err == nil {
			t.Cleanup(func() { stopBouncer(p) })
			return b
		}
		stopBouncer(p)
		log, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log"))
		if attempt < 3 && strings.Contains(string(log), "bind") {
			continue // lost the port to another process
		}
		t.Fatalf("testdb: pgbouncer did not start: %v\n%s", err, log)
	}
}

func startBouncer(bin, conf string, cred *syscall.Credential) (*process, error) {
	cmd := exec.Command(bin, conf)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	p, err := startProcess(cmd)
	if err != nil {
		return nil, fmt.Errorf("testdb: start pgbouncer: %w", err)
	}
	return p, nil
}

// stopBouncer stops pgbouncer by its PID: SIGTERM (immediate shutdown),
// then SIGKILL.
func stopBouncer(p *process) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		_ = syscall.Kill(p.cmd.Process.Pid, sig)
		select {
		case <-p.done:
			return
		case <-time.After(10 * time.Second):
		}
	}
}
