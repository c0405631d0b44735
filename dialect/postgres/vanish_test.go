package postgres_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/internal/testdb"
)

// freezingProxy forwards one loopback TCP connection to upstream until
// freeze is called; then it stops reading and writing without closing
// either side, as a host that vanished from the network would: no FIN, no
// RST.
type freezingProxy struct {
	ln     net.Listener
	frozen chan struct{}
	once   sync.Once
}

func newFreezingProxy(t *testing.T, network, upstream string) *freezingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezingProxy{ln: ln, frozen: make(chan struct{})}
	var conns []net.Conn
	var mu sync.Mutex
	t.Cleanup(func() {
		p.freeze()
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial(network, upstream)
			if err != nil {
				c.Close()
				continue
			}
			if tc, ok := u.(*net.TCPConn); ok {
				// A small window fills at once when the reading stops.
				_ = tc.SetReadBuffer(4096)
			}
			mu.Lock()
			conns = append(conns, c, u)
			mu.Unlock()
			go p.pipe(c, u)
			go p.pipe(u, c)
		}
	}()
	return p
}

func (p *freezingProxy) pipe(dst io.Writer, src io.Reader) {
	buf := make([]byte, 1024)
	for {
		select {
		case <-p.frozen:
			return // stop reading; the sockets stay open
		default:
		}
		n, err := src.Read(buf)
		select {
		case <-p.frozen:
			return
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *freezingProxy) freeze() { p.once.Do(func() { close(p.frozen) }) }

// TestVanishedHolderLosesLock: the lock holder's connection goes through a
// proxy that stops forwarding without closing. The server must end that
// session, and free the lock, within its TCP timeouts (the settings
// TryLock gives the session), not after the kernel's two hours. On
// loopback the proxy's kernel still acknowledges keepalive probes, so what
// this exercises is tcp_user_timeout: data the server sends the vanished
// holder stays unacknowledged (a zero window), as it would towards a lost
// host.
func TestVanishedHolderLosesLock(t *testing.T) {
	ctx := context.Background()
	url := testdb.Postgres(t)
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	network, upstream := "tcp", net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port))
	if strings.HasPrefix(cfg.Host, "/") {
		t.Fatalf("the test server listens on a Unix socket (%s): TCP timeouts do not apply", cfg.Host)
	}
	proxy := newFreezingProxy(t, network, upstream)
	pcfg := cfg.Copy()
	pcfg.Host, pcfg.Port = "127.0.0.1", uint16(proxy.ln.Addr().(*net.TCPAddr).Port)
	pcfg.RuntimeParams["application_name"] = "vanishing holder"
	holderDB := stdlib.OpenDB(*pcfg)
	defer holderDB.Close()
	holder, err := holderDB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	d := postgres.Dialect{}
	if ok, err := d.TryLock(ctx, holder); err != nil || !ok {
		t.Fatalf("TryLock through the proxy = %v, %v", ok, err)
	}
	var userTimeout, idle string
	if err := holder.QueryRowContext(ctx, "SELECT current_setting('tcp_user_timeout'), current_setting('tcp_keepalives_idle')").Scan(&userTimeout, &idle); err != nil {
		t.Fatal(err)
	}
	if userTimeout == "0" || idle == "0" {
		t.Fatalf("lock session: tcp_user_timeout %s, tcp_keepalives_idle %s; want them set", userTimeout, idle)
	}
	var pid int64
	if err := holder.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := holder.ExecContext(ctx, "LISTEN vanish"); err != nil {
		t.Fatal(err)
	}
	proxy.freeze()

	other, err := postgres.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	waiter, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer waiter.Close()
	if ok, err := d.TryLock(ctx, waiter); err != nil || ok {
		t.Fatalf("TryLock while the holder is there = %v, %v; want false", ok, err)
	}
	// Traffic towards the holder: notifications its idle session must
	// send, which nobody acknowledges any more.
	payload := strings.Repeat("x", 7000)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if ok, err := d.TryLock(ctx, waiter); err != nil {
			t.Fatal(err)
		} else if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the vanished holder (pid %d) still holds the lock after 3 minutes", pid)
		}
		if _, err := other.ExecContext(ctx, "SELECT pg_notify('vanish', $1)", payload); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var alive bool
	if err := other.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)", pid).Scan(&alive); err != nil || alive {
		t.Fatalf("the vanished holder's session is still there: %v, %v", alive, err)
	}
}
