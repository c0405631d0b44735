package e2e

import (
	"errors"
	"net"
	"net/http"
	"os/exec"
	"sync/atomic"
	"testing"

	"github.com/shiplock/shiplock/internal/testdb"
)

// TestSidecarShutdownAfterFailure stands in for the proxies' admin
// endpoints on their real loopback ports: after a failed run, shiplock
// still asks the proxy to exit (or a Job never completes), and keeps the
// migration's exit code.
func TestSidecarShutdownAfterFailure(t *testing.T) {
	for _, tc := range []struct{ kind, addr, path string }{
		{"linkerd", "127.0.0.1:4191", "/shutdown"},
		{"istio", "127.0.0.1:15020", "/quitquitquit"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			l, err := net.Listen("tcp", tc.addr)
			if err != nil {
				t.Skipf("cannot stand in for the %s proxy on %s: %v", tc.kind, tc.addr, err)
			}
			var calls atomic.Int32
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPost && r.URL.Path == tc.path {
					calls.Add(1)
				}
				w.Write([]byte("ok"))
			})}
			go srv.Serve(l)
			defer srv.Close()

			dir := writeMigrations(t, map[string]string{"00001_bad.sql": "-- +goose Up\nSELECT * FROM nope;\n"})
			out, err := exec.Command(shiplockBin, "up", "--dir", dir, "--database-url", testdb.Postgres(t), "--sidecar-shutdown", tc.kind).CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("up = %v, want exit 1\n%s", err, out)
			}
			if calls.Load() != 1 {
				t.Fatalf("%s shutdown requests = %d, want 1\n%s", tc.kind, calls.Load(), out)
			}
		})
	}
}
