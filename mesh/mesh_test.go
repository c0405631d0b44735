package mesh_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shiplock/shiplock/mesh"
)

// proxy stands in for a proxy's admin server: it answers the routes it is
// given ("POST /shutdown") and records every request it gets.
type proxy struct {
	*httptest.Server
	mu  sync.Mutex
	got []string
}

// route answers one "METHOD /path"; calls counts the requests to it so
// far, this one included.
type route func(w http.ResponseWriter, calls int)

func newProxy(t *testing.T, routes map[string]route) *proxy {
	t.Helper()
	p := &proxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := r.Method + " " + r.URL.Path
		p.mu.Lock()
		p.got = append(p.got, req)
		calls := 0
		for _, g := range p.got {
			if g == req {
				calls++
			}
		}
		p.mu.Unlock()
		fn, ok := routes[req]
		if !ok {
			// As the real ones do: the path exists for one method only.
			http.Error(w, "", http.StatusMethodNotAllowed)
			return
		}
		fn(w, calls)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *proxy) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.got...)
}

func answer(code int, body string) route {
	return func(w http.ResponseWriter, _ int) {
		w.WriteHeader(code)
		w.Write([]byte(body))
	}
}

// readyAfter answers 503 n times, then 200.
func readyAfter(n int, body string) route {
	return func(w http.ResponseWriter, calls int) {
		if calls <= n {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(body))
	}
}

// Fakes of the real answers (linkerd2-proxy's admin server, Istio's
// pilot-agent status server and Envoy's health port).
func linkerd(t *testing.T, shutdownEnabled bool, readyAfterN int) *proxy {
	shutdown := answer(http.StatusOK, "shutdown\n")
	if !shutdownEnabled {
		shutdown = answer(http.StatusNotFound, "shutdown endpoint is not enabled\n")
	}
	return newProxy(t, map[string]route{
		"POST /shutdown": shutdown,
		"GET /ready":     readyAfter(readyAfterN, "ready\n"),
	})
}

func istioAgent(t *testing.T) *proxy {
	return newProxy(t, map[string]route{"POST /quitquitquit": answer(http.StatusOK, "OK")})
}

func istioHealth(t *testing.T, readyAfterN int) *proxy {
	return newProxy(t, map[string]route{"GET /healthz/ready": readyAfter(readyAfterN, "")})
}

// closedURL is the URL of a loopback port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestParseKind(t *testing.T) {
	for _, s := range []string{"auto", "linkerd", "istio", "none"} {
		if k, err := mesh.ParseKind(s); err != nil || string(k) != s {
			t.Errorf("ParseKind(%q) = %q, %v", s, k, err)
		}
	}
	for _, s := range []string{"", "Linkerd", "consul"} {
		if _, err := mesh.ParseKind(s); err == nil {
			t.Errorf("ParseKind(%q): no error", s)
		}
	}
}

func TestShutdown(t *testing.T) {
	for _, tc := range []struct {
		name           string
		kind           mesh.Kind
		linkerd, istio bool // which proxies run
		want           string
		wantL, wantI   []string // requests each proxy gets
	}{
		{"linkerd", mesh.Linkerd, true, false, "linkerd proxy asked to shut down", []string{"POST /shutdown"}, nil},
		{"istio", mesh.Istio, false, true, "istio proxy asked to quit", nil, []string{"POST /quitquitquit"}},
		{"auto finds linkerd", mesh.Auto, true, false, "linkerd proxy asked to shut down", []string{"POST /shutdown"}, nil},
		{"auto finds istio", mesh.Auto, false, true, "istio proxy asked to quit", nil, []string{"POST /quitquitquit"}},
		{"auto without a mesh", mesh.Auto, false, false, "no mesh proxy answered; nothing to shut down", nil, nil},
		{"none", mesh.None, true, true, "no sidecar shutdown (none)", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := mesh.Config{LinkerdAdmin: closedURL(t), IstioAgent: closedURL(t)}
			var l, i *proxy
			if tc.linkerd {
				l = linkerd(t, true, 0)
				cfg.LinkerdAdmin = l.URL
			}
			if tc.istio {
				i = istioAgent(t)
				cfg.IstioAgent = i.URL
			}
			got, err := mesh.Shutdown(ctx(t), tc.kind, cfg)
			if err != nil || got != tc.want {
				t.Fatalf("Shutdown(%s) = %q, %v; want %q", tc.kind, got, err, tc.want)
			}
			if l != nil && !slices.Equal(l.requests(), tc.wantL) {
				t.Errorf("linkerd got %q, want %q", l.requests(), tc.wantL)
			}
			if i != nil && !slices.Equal(i.requests(), tc.wantI) {
				t.Errorf("istio got %q, want %q", i.requests(), tc.wantI)
			}
		})
	}
}

func TestShutdownErrors(t *testing.T) {
	t.Parallel()

	// The pod lacks the annotation: Linkerd's 404, and the fix, even
	// under auto (the Job would otherwise never complete).
	l := linkerd(t, false, 0)
	for _, kind := range []mesh.Kind{mesh.Linkerd, mesh.Auto} {
		_, err := mesh.Shutdown(ctx(t), kind, mesh.Config{LinkerdAdmin: l.URL, IstioAgent: closedURL(t)})
		var perr *mesh.ProxyError
		if !errors.As(err, &perr) || perr.Status != http.StatusNotFound || perr.Kind != mesh.Linkerd {
			t.Fatalf("%s, shutdown not enabled: got %v, want a 404 ProxyError", kind, err)
		}
		for _, want := range []string{"shutdown endpoint is not enabled", "config.linkerd.io/proxy-admin-shutdown: enabled"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not say %q", kind, err, want)
			}
		}
	}

	// An explicit kind with nothing listening is an error.
	for _, kind := range []mesh.Kind{mesh.Linkerd, mesh.Istio} {
		_, err := mesh.Shutdown(ctx(t), kind, mesh.Config{LinkerdAdmin: closedURL(t), IstioAgent: closedURL(t)})
		if !errors.Is(err, mesh.ErrNoProxy) {
			t.Errorf("%s with no proxy: got %v, want ErrNoProxy", kind, err)
		}
	}

	if _, err := mesh.Shutdown(ctx(t), "consul", mesh.Config{}); err == nil {
		t.Error("unknown kind: no error")
	}
}

// The zero Config aims at the real ports on localhost. The test dials
// nothing: its client records where each request goes and answers as a
// closed port does, so a proxy on this machine can neither fail nor skip it.
func TestShutdownDefaults(t *testing.T) {
	var mu sync.Mutex
	var dialed []string
	refuse := &http.Client{Transport: &http.Transport{
		Proxy: nil,
		DialContext: func(_ context.Context, network, addr string) (net.Conn, error) {
			mu.Lock()
			dialed = append(dialed, addr)
			mu.Unlock()
			return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
		},
	}}
	got, err := mesh.Shutdown(ctx(t), mesh.Auto, mesh.Config{Client: refuse})
	if err != nil || got != "no mesh proxy answered; nothing to shut down" {
		t.Errorf("Shutdown(auto) with the defaults = %q, %v", got, err)
	}
	if want := []string{"localhost:4191", "localhost:15020"}; !slices.Equal(dialed, want) {
		t.Errorf("Shutdown(auto) with the defaults dialed %q, want %q", dialed, want)
	}
	if _, err := mesh.Shutdown(ctx(t), mesh.Linkerd, mesh.Config{Client: refuse}); !errors.Is(err, mesh.ErrNoProxy) || !strings.Contains(err.Error(), "http://localhost:4191/shutdown") {
		t.Errorf("Shutdown(linkerd) with the defaults: %v", err)
	}
	if _, err := mesh.Shutdown(ctx(t), mesh.Istio, mesh.Config{Client: refuse}); !errors.Is(err, mesh.ErrNoProxy) || !strings.Contains(err.Error(), "http://localhost:15020/quitquitquit") {
		t.Errorf("Shutdown(istio) with the defaults: %v", err)
	}
	if got := mesh.LocalURL(mesh.DefaultLinkerdAdminPort); got != mesh.DefaultLinkerdAdmin {
		t.Errorf("LocalURL(DefaultLinkerdAdminPort) = %q, want %q", got, mesh.DefaultLinkerdAdmin)
	}
	if got := mesh.LocalURL(mesh.DefaultIstioAgentPort); got != mesh.DefaultIstioAgent {
		t.Errorf("LocalURL(DefaultIstioAgentPort) = %q, want %q", got, mesh.DefaultIstioAgent)
	}
}

func TestWaitReady(t *testing.T) {
	for _, tc := range []struct {
		name           string
		kind           mesh.Kind
		linkerd, istio bool
		want           string
	}{
		{"linkerd", mesh.Linkerd, true, false, "linkerd proxy ready"},
		{"istio", mesh.Istio, false, true, "istio proxy ready"},
		{"auto finds linkerd", mesh.Auto, true, false, "linkerd proxy ready"},
		{"auto finds istio", mesh.Auto, false, true, "istio proxy ready"},
		{"auto without a mesh", mesh.Auto, false, false, "no mesh proxy answered; not waiting"},
		{"none", mesh.None, true, true, "not waiting for a mesh proxy (none)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := mesh.Config{LinkerdAdmin: closedURL(t), IstioHealth: closedURL(t)}
			var l, i *proxy
			if tc.linkerd {
				l = linkerd(t, true, 2) // 503 twice, then ready
				cfg.LinkerdAdmin = l.URL
			}
			if tc.istio {
				i = istioHealth(t, 2)
				cfg.IstioHealth = i.URL
			}
			got, err := mesh.WaitReady(ctx(t), tc.kind, cfg)
			if err != nil || got != tc.want {
				t.Fatalf("WaitReady(%s) = %q, %v; want %q", tc.kind, got, err, tc.want)
			}
			for _, c := range []struct {
				p    *proxy
				path string
			}{{l, "GET /ready"}, {i, "GET /healthz/ready"}} {
				if c.p == nil {
					continue
				}
				var want []string
				if tc.kind != mesh.None {
					want = []string{c.path, c.path, c.path}
				}
				if got := c.p.requests(); !slices.Equal(got, want) {
					t.Errorf("proxy got %q, want %q", got, want)
				}
			}
		})
	}
}

// A proxy that starts late: an explicit kind waits for it to listen.
func TestWaitReadyLateProxy(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	started := make(chan struct{})
	go func() {
		defer close(started)
		time.Sleep(100 * time.Millisecond)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return // the port was taken meanwhile; the wait below fails
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ready\n")) })}
		t.Cleanup(func() { srv.Close() })
		go srv.Serve(l)
	}()
	got, err := mesh.WaitReady(ctx(t), mesh.Linkerd, mesh.Config{LinkerdAdmin: "http://" + addr})
	<-started
	if err != nil || got != "linkerd proxy ready" {
		t.Fatalf("WaitReady(linkerd), proxy started late = %q, %v", got, err)
	}
}

func TestWaitReadyTimesOut(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		url   func(t *testing.T) string
		check func(error) bool
	}{
		{"never ready", func(t *testing.T) string { return linkerd(t, true, 1<<30).URL }, func(err error) bool {
			var perr *mesh.ProxyError
			return errors.As(err, &perr) && perr.Status == http.StatusServiceUnavailable
		}},
		{"never listens", closedURL, func(err error) bool { return errors.Is(err, mesh.ErrNoProxy) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			_, err := mesh.WaitReady(c, mesh.Linkerd, mesh.Config{LinkerdAdmin: tc.url(t)})
			var nr *mesh.NotReadyError
			if !errors.As(err, &nr) || !errors.Is(err, context.DeadlineExceeded) || !tc.check(err) {
				t.Fatalf("WaitReady: got %v", err)
			}
		})
	}
}

// A pod told to wait for a proxy that was never injected: the wait ends by
// itself, without a deadline from the caller, and says what is missing.
func TestWaitReadyBoundedWithoutProxy(t *testing.T) {
	t.Parallel()
	_, err := mesh.WaitReady(context.Background(), mesh.Linkerd, mesh.Config{LinkerdAdmin: closedURL(t), ReadyTimeout: 300 * time.Millisecond})
	var nr *mesh.NotReadyError
	if !errors.As(err, &nr) || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, mesh.ErrNoProxy) {
		t.Fatalf("WaitReady with no proxy = %v; want a *NotReadyError wrapping ErrNoProxy and DeadlineExceeded", err)
	}
	if !strings.Contains(err.Error(), "no linkerd proxy listening") || !strings.Contains(err.Error(), "not injected") {
		t.Fatalf("message does not say what is missing: %v", err)
	}
}
