// Package mesh talks to the service-mesh proxy that runs beside shiplock in
// its pod: it waits for the proxy to be ready before the first connection
// (an injected proxy captures the pod's traffic), and asks it to exit once
// the run is over, so that a Job whose pod carries a proxy can complete.
//
// Linkerd's proxy serves its admin API on port 4191: GET /ready, and
// POST /shutdown, which answers 404 "shutdown endpoint is not enabled"
// unless the pod has the annotation
// config.linkerd.io/proxy-admin-shutdown: enabled. Istio's pilot-agent
// serves POST /quitquitquit on port 15020, and Envoy GET /healthz/ready on
// port 15021. Both proxies accept these requests from the loopback
// interface only, which is where this package sends them.
//
// Under Kubernetes native sidecars (the proxy is an init container with
// restartPolicy: Always) the kubelet stops the proxy itself once the main
// containers have exited, so no shutdown is needed; asking anyway only
// makes the kubelet restart the proxy until the pod finishes. Never ask in
// a long-running pod (an initContainer of a Deployment): its app needs the
// proxy afterwards.
package mesh

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Kind names a mesh.
type Kind string

const (
	// Auto finds out which proxy answers on its admin port, and does
	// nothing when none does (connection refused is normal without a mesh).
	Auto Kind = "auto"
	// Linkerd is Linkerd's linkerd2-proxy.
	Linkerd Kind = "linkerd"
	// Istio is Istio's pilot-agent and Envoy.
	Istio Kind = "istio"
	// None does nothing.
	None Kind = "none"
)

// ParseKind parses "auto", "linkerd", "istio" or "none".
func ParseKind(s string) (Kind, error) {
	switch k := Kind(s); k {
	case Auto, Linkerd, Istio, None:
		return k, nil
	}
	return "", fmt.Errorf("mesh: unknown kind %q: want auto, linkerd, istio or none", s)
}

// Default admin base URLs (scheme, host and port; no path).
const (
	DefaultLinkerdAdmin = "http://localhost:4191"
	DefaultIstioAgent   = "http://localhost:15020"
	DefaultIstioHealth  = "http://localhost:15021"
)

// Default admin ports: Linkerd's admin server (pod annotation
// config.linkerd.io/admin-port changes it) and Istio's pilot-agent status
// server (pod annotation status.sidecar.istio.io/port changes it).
const (
	DefaultLinkerdAdminPort = 4191
	DefaultIstioAgentPort   = 15020
)

// LocalURL is the base URL of a proxy port on localhost, for Config's
// fields when a pod moved a proxy's port.
func LocalURL(port int) string { return fmt.Sprintf("http://localhost:%d", port) }

// Config says where the proxies listen and how to reach them. The zero value
// is a valid configuration: the default ports on localhost and a client
// with short timeouts.
type Config struct {
	// LinkerdAdmin is the Linkerd proxy's admin server: POST /shutdown and
	// GET /ready (default DefaultLinkerdAdmin).
	LinkerdAdmin string
	// IstioAgent is Istio's pilot-agent status server: POST /quitquitquit
	// (default DefaultIstioAgent).
	IstioAgent string
	// IstioHealth is Envoy's health port: GET /healthz/ready (default
	// DefaultIstioHealth).
	IstioHealth string
	// Client sends the requests. nil means a client that ignores
	// HTTP_PROXY, keeps no connections and gives up on a request after 2s.
	Client *http.Client
	// Logger receives one record per distinct outcome while WaitReady
	// waits; nil discards.
	Logger *slog.Logger
	// ReadyTimeout bounds WaitReady: a pod whose proxy was never injected
	// must not wait forever. 0 means DefaultReadyTimeout; a negative value
	// leaves the bound to the caller's context.
	ReadyTimeout time.Duration
}

// DefaultReadyTimeout is how long WaitReady waits by default. A proxy
// injected into the pod is ready within seconds of starting.
const DefaultReadyTimeout = time.Minute

// ErrNoProxy is wrapped by the errors of Shutdown and WaitReady when nothing
// listens where the proxy of an explicit Kind should be.
var ErrNoProxy = errors.New("mesh: no proxy listening")

// ProxyError is a proxy that answered with an unexpected status.
type ProxyError struct {
	Kind   Kind
	Method string
	URL    string
	Status int
	// Body is the first line of the answer, at most 200 bytes.
	Body string
	// Hint says how to fix it, when known.
	Hint string
}

func (e *ProxyError) Error() string {
	msg := fmt.Sprintf("mesh: %s proxy answered %s %s with %d", e.Kind, e.Method, e.URL, e.Status)
	if e.Body != "" {
		msg += ": " + e.Body
	}
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

// NotReadyError is WaitReady's bound or context ending before the proxy
// was ready. It wraps the context's error (context.DeadlineExceeded when
// the bound ran out) and the last attempt's error (a *ProxyError, or one
// wrapping ErrNoProxy when nothing listened: no proxy in the pod).
type NotReadyError struct {
	Kind   Kind
	URL    string
	Waited time.Duration
	Last   error
	Cause  error
}

func (e *NotReadyError) Error() string {
	if errors.Is(e.Last, ErrNoProxy) {
		return fmt.Sprintf("mesh: no %s proxy listening at %s after %s: the pod has no %s proxy (not injected?)", e.Kind, e.URL, e.Waited.Round(time.Millisecond), e.Kind)
	}
	return fmt.Sprintf("mesh: %s proxy not ready at %s after %s: %v", e.Kind, e.URL, e.Waited.Round(time.Millisecond), e.Last)
}

func (e *NotReadyError) Unwrap() []error { return []error{e.Cause, e.Last} }

// endpoint is one request to one proxy.
type endpoint struct {
	kind   Kind
	method string
	base   string
	path   string
}

func (e endpoint) url() string { return strings.TrimRight(e.base, "/") + e.path }

func (c Config) withDefaults() Config {
	if c.LinkerdAdmin == "" {
		c.LinkerdAdmin = DefaultLinkerdAdmin
	}
	if c.IstioAgent == "" {
		c.IstioAgent = DefaultIstioAgent
	}
	if c.IstioHealth == "" {
		c.IstioHealth = DefaultIstioHealth
	}
	if c.Client == nil {
		c.Client = &http.Client{
			Timeout: 2 * time.Second,
			Transport: &http.Transport{
				Proxy:             nil, // the proxy is on localhost; never go through HTTP_PROXY
				DialContext:       (&net.Dialer{Timeout: time.Second}).DialContext,
				DisableKeepAlives: true,
			},
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

func (c Config) shutdownEndpoint(k Kind) endpoint {
	if k == Linkerd {
		return endpoint{Linkerd, http.MethodPost, c.LinkerdAdmin, "/shutdown"}
	}
	return endpoint{Istio, http.MethodPost, c.IstioAgent, "/quitquitquit"}
}

func (c Config) readyEndpoint(k Kind) endpoint {
	if k == Linkerd {
		return endpoint{Linkerd, http.MethodGet, c.LinkerdAdmin, "/ready"}
	}
	return endpoint{Istio, http.MethodGet, c.IstioHealth, "/healthz/ready"}
}

// call sends one request. It returns an error wrapping ErrNoProxy when
// nothing listens, and a *ProxyError for a status other than 200.
func (c Config) call(ctx context.Context, e endpoint) error {
	u := e.url()
	req, err := http.NewRequestWithContext(ctx, e.method, u, http.NoBody)
	if err != nil {
		return fmt.Errorf("mesh: %s %s: %w", e.method, u, err)
	}
	resp, err := c.Client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // the method and URL are said below
		}
		if nothingListens(err) {
			return fmt.Errorf("%w: %s %s: %w", ErrNoProxy, e.method, u, err)
		}
		return fmt.Errorf("mesh: %s %s: %w", e.method, u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
	if len(line) > 200 {
		line = line[:200]
	}
	perr := &ProxyError{Kind: e.kind, Method: e.method, URL: u, Status: resp.StatusCode, Body: line}
	if e.kind == Linkerd && e.path == "/shutdown" && resp.StatusCode == http.StatusNotFound {
		perr.Hint = "annotate the pod with config.linkerd.io/proxy-admin-shutdown: enabled"
	}
	return perr
}

// nothingListens reports whether a request failed because no process
// listens on the proxy's port: the normal case without a mesh.
func nothingListens(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EADDRNOTAVAIL)
}

// answers reports whether the proxy behind e is there at all: any HTTP
// answer counts, only "nothing listens" does not.
func (c Config) answers(ctx context.Context, e endpoint) (bool, error) {
	err := c.call(ctx, e)
	var perr *ProxyError
	switch {
	case err == nil, errors.As(err, &perr):
		return true, nil
	case errors.Is(err, ErrNoProxy):
		return false, nil
	}
	return false, err
}

// Shutdown asks the proxy of kind to exit, and returns what it did in a few
// words ("linkerd proxy asked to shut down"). Call it once the run is over,
// whether it succeeded or failed, with a context that is not already done
// (context.WithoutCancel of the run's, bounded by a short timeout).
//
// For Linkerd or Istio, nothing listening on the admin port is an error
// wrapping ErrNoProxy, and an answer other than 200 a *ProxyError (Linkerd's
// 404 says the pod lacks config.linkerd.io/proxy-admin-shutdown: enabled).
// For Auto, a kind whose port has no listener is skipped: with no proxy at
// all Shutdown does nothing and returns nil. None does nothing. Shutdown
// sends the request and returns; it does not wait for the proxy to exit.
func Shutdown(ctx context.Context, kind Kind, cfg Config) (string, error) {
	cfg = cfg.withDefaults()
	switch kind {
	case None:
		return "no sidecar shutdown (none)", nil
	case Linkerd, Istio:
		if err := cfg.call(ctx, cfg.shutdownEndpoint(kind)); err != nil {
			return "", err
		}
		return shutdownDone(kind), nil
	case Auto:
		var done []string
		for _, k := range []Kind{Linkerd, Istio} {
			err := cfg.call(ctx, cfg.shutdownEndpoint(k))
			switch {
			case errors.Is(err, ErrNoProxy):
				continue
			case err != nil:
				return strings.Join(done, "; "), err
			}
			done = append(done, shutdownDone(k))
		}
		if len(done) == 0 {
			return "no mesh proxy answered; nothing to shut down", nil
		}
		return strings.Join(done, "; "), nil
	}
	return "", fmt.Errorf("mesh: unknown kind %q", kind)
}

func shutdownDone(k Kind) string {
	if k == Linkerd {
		return "linkerd proxy asked to shut down"
	}
	return "istio proxy asked to quit"
}

// Backoff of WaitReady.
const (
	readyInterval    = 25 * time.Millisecond
	readyMaxInterval = time.Second
)

// WaitReady waits until the proxy of kind reports ready (200 from Linkerd's
// GET /ready or Envoy's GET /healthz/ready), polling with jittered backoff
// from 25ms to 1s, and returns what it did in a few words ("linkerd proxy
// ready"). It waits at most cfg.ReadyTimeout (DefaultReadyTimeout when 0)
// and until ctx ends: when either comes first it returns a *NotReadyError.
//
// For Linkerd or Istio it waits for the proxy to listen, too. For Auto it
// asks each port once: when nothing listens on either it returns at once
// (no mesh), else it waits for the one that answered. A proxy that starts
// after the app's container is therefore missed by Auto: name the kind
// where that can happen. None returns at once.
func WaitReady(ctx context.Context, kind Kind, cfg Config) (string, error) {
	cfg = cfg.withDefaults()
	switch kind {
	case None:
		return "not waiting for a mesh proxy (none)", nil
	case Linkerd, Istio:
	case Auto:
		found := None
		for _, k := range []Kind{Linkerd, Istio} {
			ok, err := cfg.answers(ctx, cfg.readyEndpoint(k))
			if err != nil {
				return "", err
			}
			if ok {
				found = k
				break
			}
		}
		if found == None {
			return "no mesh proxy answered; not waiting", nil
		}
		kind = found
	default:
		return "", fmt.Errorf("mesh: unknown kind %q", kind)
	}

	start := time.Now()
	if cfg.ReadyTimeout >= 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cmp.Or(cfg.ReadyTimeout, DefaultReadyTimeout))
		defer cancel()
	}
	e := cfg.readyEndpoint(kind)
	notReady := func(last error) error {
		return &NotReadyError{Kind: kind, URL: e.url(), Waited: time.Since(start), Last: last, Cause: ctx.Err()}
	}
	interval := readyInterval
	seen := map[string]bool{}
	var (
		timer *time.Timer
		prev  error
	)
	for {
		err := cfg.call(ctx, e)
		if err == nil {
			return string(kind) + " proxy ready", nil
		}
		if ctx.Err() != nil {
			// An attempt cut short by the deadline says nothing about
			// the proxy: report the one before (no proxy, not ready).
			var perr *ProxyError
			if prev != nil && !errors.As(err, &perr) && !errors.Is(err, ErrNoProxy) {
				err = prev
			}
			return "", notReady(err)
		}
		prev = err
		if msg := err.Error(); !seen[msg] {
			seen[msg] = true
			cfg.Logger.Info("waiting for the mesh proxy", "mesh", string(kind), "err", msg)
		}
		pause := interval/2 + rand.N(interval/2+1)
		if timer == nil {
			timer = time.NewTimer(pause)
			defer timer.Stop()
		} else {
			timer.Reset(pause)
		}
		select {
		case <-ctx.Done():
			return "", notReady(err)
		case <-timer.C:
		}
		interval = min(interval*2, readyMaxInterval)
	}
}
