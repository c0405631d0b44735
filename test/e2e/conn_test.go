package e2e

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiplock/shiplock/internal/testdb"
)

// cleanEnv is the test's environment without any database setting, so that
// each case gives exactly the ones it names.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "DATABASE_URL=") || strings.HasPrefix(kv, "SHIPLOCK_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// runShiplock runs the binary and returns its exit code and combined output.
func runShiplock(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(shiplockBin, args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode(), out.String()
	case err != nil:
		t.Fatal(err)
	}
	return 0, out.String()
}

// TestConnectionSettings: pgx reads the settings (environment, service file,
// password file), and settings that can never connect fail at once with
// exit 2 instead of being retried until --wait-timeout.
func TestConnectionSettings(t *testing.T) {
	srv := testdb.PostgresServer(t)
	db := srv.CreateDatabase(t, "")
	port := itoa(srv.Port)
	closed := closedLoopbackPort(t)

	const canary = "Svc-Canary-9f3e"
	svcDir := t.TempDir()
	svcFile := filepath.Join(svcDir, "pg_service.conf")
	writeFile(t, svcDir, "pg_service.conf", "[accounts]\nhost="+srv.Host+"\nport="+port+"\nuser=postgres\ndbname="+db+"\npassword="+canary+"\n")
	dir := writeMigrations(t, map[string]string{
		// The password from the service file, in the SQL that plan prints.
		"00001_a.sql": "-- +goose Up\nSELECT '" + canary + "';\n",
	})

	tests := []struct {
		name    string
		env     []string
		args    []string
		want    int
		output  string // must appear
		without []string
	}{
		{"service file only", []string{"PGSERVICEFILE=" + svcFile, "PGSERVICE=accounts"},
			[]string{"plan", "--dir", dir}, 0, "-- up 1 00001_a.sql", []string{canary}},
		{"PGDBNAME over a service", []string{"PGSERVICEFILE=" + svcFile, "PGSERVICE=accounts", "PGDBNAME=no_such_db"},
			[]string{"wait", "--wait-timeout", "0"}, 5, "no_such_db", []string{canary}},
		{"port glued to PGHOST", []string{"PGHOST=" + srv.Host + ":" + port, "PGUSER=postgres", "PGDATABASE=" + db},
			[]string{"wait", "--wait-timeout", "1m"}, 2, `includes a port: give the host alone and the port separately (PGPORT=` + port, nil},
		{"port glued in a host list", []string{"PGHOST=" + srv.Host + ",db.example:5432", "PGPORT=" + port, "PGUSER=postgres", "PGDATABASE=" + db},
			[]string{"wait", "--wait-timeout", "1m"}, 2, `"db.example:5432" includes a port`, nil},
		{"unsubstituted $HOST", []string{"PGHOST=$HOST", "PGUSER=postgres"},
			[]string{"wait", "--wait-timeout", "1m"}, 2, "looks like a variable nothing substituted", nil},
		{"unsubstituted ${DB_HOST} in a URL", []string{"DATABASE_URL=postgres://postgres@${DB_HOST}:" + port + "/" + db},
			[]string{"wait", "--wait-timeout", "1m"}, 2, "looks like a variable nothing substituted", nil},
		{"raw special characters in a URL password", []string{"DATABASE_URL=postgres://u:p@ss/w#rd@" + srv.Host + ":" + port + "/" + db},
			[]string{"wait", "--wait-timeout", "1m"}, 2, "must be percent-encoded: write @ as %40, / as %2F, # as %23", []string{"p@ss", "w#rd", "ss/w"}},
		{"unencoded at sign in a URL password", []string{"DATABASE_URL=postgres://u:p@ss@" + srv.Host + ":" + port + "/" + db},
			[]string{"wait", "--wait-timeout", "1m"}, 2, "must be percent-encoded", []string{"ss@"}},
		{"invalid escape in a URL password", []string{"DATABASE_URL=postgres://u:100%@" + srv.Host + ":" + port + "/" + db},
			[]string{"wait", "--wait-timeout", "1m"}, 2, "% as %25", []string{"100%@"}},
		// What must keep working.
		{"IPv6 loopback", []string{"PGHOST=::1", "PGPORT=" + closed, "PGUSER=postgres"},
			[]string{"wait", "--wait-timeout", "0"}, 6, "", nil},
		{"host list", []string{"PGHOST=127.0.0.1," + srv.Host, "PGPORT=" + closed + "," + port, "PGUSER=postgres", "PGDATABASE=" + db},
			[]string{"wait", "--wait-timeout", "0"}, 0, "", nil},
		{"socket directory", []string{"PGHOST=" + t.TempDir(), "PGUSER=postgres"},
			[]string{"wait", "--wait-timeout", "0"}, 6, "", nil},
		{"nothing given", nil,
			[]string{"wait", "--wait-timeout", "0"}, 2, "no database given", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := runShiplock(t, cleanEnv(tt.env...), tt.args...)
			if code != tt.want {
				t.Errorf("exit %d, want %d:\n%s", code, tt.want, out)
			}
			if !strings.Contains(out, tt.output) {
				t.Errorf("output lacks %q:\n%s", tt.output, out)
			}
			for _, s := range tt.without {
				if strings.Contains(out, s) {
					t.Errorf("output shows %q:\n%s", s, out)
				}
			}
		})
	}
}

func closedLoopbackPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, p, _ := net.SplitHostPort(l.Addr().String())
	l.Close()
	return p
}
