package e2e

import (
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/shiplock/shiplock/internal/testdb"
)

// closedPort is a loopback port nothing listens on.
func closedPort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// TestSidecarShutdownAfterFailure stands in for the proxies' admin
// endpoints on free loopback ports, given to shiplock by flag (Linkerd) and
// by env var (Istio), as a pod that moved the proxy's port would: after a
// failed run, shiplock still asks the proxy to exit (or a Job never
// completes), and keeps the migration's exit code.
func TestSidecarShutdownAfterFailure(t *testing.T) {
	for _, tc := range []struct{ kind, path, flag, env string }{
		{"linkerd", "/shutdown", "--linkerd-admin-port", ""},
		{"istio", "/quitquitquit", "", "SHIPLOCK_ISTIO_STATUS_PORT"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
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
			args := []string{"up", "--dir", dir, "--database-url", testdb.Postgres(t), "--sidecar-shutdown", tc.kind}
			if tc.flag != "" {
				args = append(args, tc.flag, port)
			}
			cmd := exec.Command(shiplockBin, args...)
			// The other proxy's port is closed, so only ours can answer.
			cmd.Env = append(os.Environ(), "SHIPLOCK_LINKERD_ADMIN_PORT="+closedPort(t), "SHIPLOCK_ISTIO_STATUS_PORT="+closedPort(t))
			if tc.env != "" {
				cmd.Env = append(cmd.Env, tc.env+"="+port)
			}
			out, err := cmd.CombinedOutput()
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

// TestSidecarPortUsage: a proxy port that is not a port number is a usage
// error (exit 2) naming where it came from, before anything runs.
func TestSidecarPortUsage(t *testing.T) {
	dir := writeMigrations(t, map[string]string{"00001_a.sql": "-- +goose Up\nSELECT 1;\n"})
	for _, tc := range []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"--linkerd-admin-port", "http://x"}, "", "--linkerd-admin-port"},
		{nil, "SHIPLOCK_ISTIO_STATUS_PORT=70000", "SHIPLOCK_ISTIO_STATUS_PORT"},
	} {
		cmd := exec.Command(shiplockBin, append([]string{"up", "--dir", dir, "--database-url", "postgres://127.0.0.1:1/x", "--sidecar-shutdown", "auto"}, tc.args...)...)
		cmd.Env = append(os.Environ(), tc.env)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
			t.Errorf("%v %s: %v, want exit 2 naming %s\n%s", tc.args, tc.env, err, tc.want, out)
		}
	}
}
