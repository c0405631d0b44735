package e2e

import (
	"bytes"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/shiplock/shiplock/internal/testdb"
)

// recordingProxy forwards loopback TCP connections to target and keeps
// every byte the clients send.
type recordingProxy struct {
	addr string
	mu   sync.Mutex
	sent bytes.Buffer
}

func (p *recordingProxy) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent.Write(b)
}

func (p *recordingProxy) clientSent() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent.String()
}

func startRecordingProxy(t *testing.T, target string) *recordingProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	p := &recordingProxy{addr: l.Addr().String()}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go func() {
				io.Copy(s, io.TeeReader(c, p))
				s.Close()
			}()
			go func() {
				io.Copy(c, s)
				c.Close()
			}()
		}
	}()
	return p
}

// TestRequireAuthKeepsCleartextPasswordHome: a server without TLS that asks
// for a cleartext password (pg_hba.conf "password") gets it, under libpq's
// default sslmode=prefer; with PGREQUIREAUTH=scram-sha-256, what the
// rendered manifests set, shiplock refuses before sending it. The bytes the
// client sends are read off the wire.
func TestRequireAuthKeepsCleartextPasswordHome(t *testing.T) {
	srv := testdb.PostgresServer(t)
	role := srv.CreateCleartextRole(t)
	db := srv.CreateDatabase(t, role.Name)
	target := net.JoinHostPort(srv.Host, itoa(srv.Port))

	env := func(proxy *recordingProxy, extra ...string) []string {
		host, port, _ := net.SplitHostPort(proxy.addr)
		return cleanEnv(append([]string{"PGHOST=" + host, "PGPORT=" + port, "PGUSER=" + role.Name,
			"PGPASSWORD=" + role.Password, "PGDATABASE=" + db}, extra...)...)
	}

	// Without require_auth, the password crosses the wire as is.
	leak := startRecordingProxy(t, target)
	if code, out := runShiplock(t, env(leak), "wait", "--wait-timeout", "0"); code != 0 {
		t.Fatalf("wait without PGREQUIREAUTH: exit %d\n%s", code, out)
	}
	if !strings.Contains(leak.clientSent(), role.Password) {
		t.Fatal("the control case sent no cleartext password: the server does not ask for one")
	}

	guarded := startRecordingProxy(t, target)
	code, out := runShiplock(t, env(guarded, "PGREQUIREAUTH=scram-sha-256"), "wait", "--wait-timeout", "10s")
	if code == 0 {
		t.Fatalf("wait with PGREQUIREAUTH=scram-sha-256 connected to a cleartext server:\n%s", out)
	}
	if code == 6 || strings.Contains(out, "waiting for the database") {
		t.Errorf("a refused authentication method was retried (exit %d):\n%s", code, out)
	}
	if !strings.Contains(out, "server requested password authentication") {
		t.Errorf("the error does not say why:\n%s", out)
	}
	if sent := guarded.clientSent(); sent == "" || strings.Contains(sent, role.Password) {
		t.Errorf("the password was sent (%d bytes sent)", len(sent))
	}
	if strings.Contains(out, role.Password) {
		t.Errorf("the password is printed:\n%s", out)
	}
}
