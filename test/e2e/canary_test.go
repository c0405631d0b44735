package e2e

import (
	"bytes"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/shiplock/shiplock/internal/testdb"
)

// TestPasswordNeverPrinted runs every command and failure path with a canary
// password and checks that it appears nowhere: stdout, stderr (logs in both
// formats) and the termination log.
func TestPasswordNeverPrinted(t *testing.T) {
	srv := testdb.PostgresServer(t)
	role := srv.CreateRole(t)
	db := srv.CreateDatabase(t, role.Name)
	canary := role.Password
	// A second secret that only ENVSUB brings in: its name looks secret.
	appSecret := "AppCanary-" + canary[:8]
	spellings := []string{canary, url.QueryEscape(canary), url.PathEscape(canary), appSecret}

	dir := writeMigrations(t, map[string]string{
		"00001_a.sql": "-- +goose Up\nCREATE TABLE a (id int);\n-- +goose Down\nDROP TABLE a;\n",
		"00002_b.sql": "-- +goose Up\nINSERT INTO a VALUES (1);\n-- +goose Down\nDELETE FROM a;\n",
	})
	broken := writeMigrations(t, map[string]string{
		"00001_a.sql": "-- +goose Up\nSELECT * FROM missing_table;\n",
	})
	// plan prints the SQL: the password as a literal, through ${PGPASSWORD}
	// and through a secret-looking ENVSUB variable.
	secretSQL := writeMigrations(t, map[string]string{
		"00001_a.sql": "-- +goose Up\n-- +goose ENVSUB ON\nCREATE ROLE " + role.Name + "_app LOGIN PASSWORD '${APP_DB_PASSWORD}';\n" +
			"SELECT '${PGPASSWORD}' AS pw, 'x${APP_DB_PASSWORD}x' AS glued;\nCOMMENT ON ROLE " + role.Name + " IS '" + canary + "';\n",
	})
	// A failing statement that holds the ENVSUB secret: the server echoes
	// it in the error, which reaches stderr, logs and the termination log.
	secretFails := writeMigrations(t, map[string]string{
		"00001_a.sql": "-- +goose Up\n-- +goose ENVSUB ON\nSELECT * FROM \"missing_${APP_DB_PASSWORD}\";\n",
	})
	goodURL := srv.URL(db, role.Name, canary)
	// The canary as a wrong password: the role's real one is different.
	other := srv.CreateRole(t)
	wrongURL := srv.URL(db, other.Name, canary)
	deadURL := "postgres://" + role.Name + ":" + url.QueryEscape(canary) + "@127.0.0.1:1/" + db + "?sslmode=disable"

	type run struct {
		name string
		env  []string
		args []string
		want int // exit code
	}
	var runs []run
	for _, format := range []string{"json", "text"} {
		viaURL := []string{"DATABASE_URL=" + goodURL}
		viaEnv := []string{"PGHOST=" + srv.Host, "PGPORT=" + itoa(srv.Port), "PGUSER=" + role.Name, "PGPASSWORD=" + canary, "PGDBNAME=" + db}
		runs = append(runs,
			run{"up", viaURL, []string{"up", "--dir", dir}, 0},
			run{"status", viaEnv, []string{"status", "--dir", dir, "-o", "json"}, 0},
			run{"plan", viaEnv, []string{"plan", "--dir", dir, "--down"}, 0},
			run{"verify", viaURL, []string{"verify", "--dir", dir}, 0},
			run{"down", viaEnv, []string{"down", "--dir", dir, "--to", "0", "-o", "json"}, 0},
			run{"wrong password", []string{"DATABASE_URL=" + wrongURL}, []string{"up", "--dir", dir}, 5},
			run{"wrong password env", []string{"PGHOST=" + srv.Host, "PGPORT=" + itoa(srv.Port), "PGUSER=" + other.Name, "PGPASSWORD=" + canary, "PGDBNAME=" + db}, []string{"up", "--dir", dir}, 5},
			run{"unreachable", []string{"DATABASE_URL=" + deadURL}, []string{"up", "--dir", dir, "--wait-timeout", "200ms"}, 6},
			run{"sql error", viaURL, []string{"up", "--dir", broken}, 1},
			run{"plan with secrets in the SQL", append(viaEnv, "APP_DB_PASSWORD="+appSecret), []string{"plan", "--dir", secretSQL}, 0},
			run{"plan with secrets in the SQL via URL", append(viaURL, "APP_DB_PASSWORD="+appSecret), []string{"plan", "--dir", secretSQL}, 0},
			run{"failing ENVSUB statement", append(viaURL, "APP_DB_PASSWORD="+appSecret), []string{"up", "--dir", secretFails}, 1},
			run{"failing ENVSUB statement, plan", append(viaURL, "APP_DB_PASSWORD="+appSecret), []string{"plan", "--dir", secretFails}, 0},
			run{"flag url", nil, []string{"up", "--dir", dir, "--database-url", goodURL}, 0},
			run{"bad flag value", nil, []string{"up", "--dir", dir, "--database-url", goodURL, "--tx-mode", canary}, 2},
		)
		for i := range runs {
			runs[i].args = append(runs[i].args, "--log-format", format)
		}
	}
	for _, r := range runs {
		term := filepath.Join(t.TempDir(), "termination-log")
		cmd := exec.Command(shiplockBin, r.args...)
		cmd.Env = append(os.Environ(), append(r.env, "SHIPLOCK_TERMINATION_LOG="+term)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		}
		if code != r.want {
			t.Errorf("%s: exit %d, want %d\n%s", r.name, code, r.want, out.String())
		}
		termLog, _ := os.ReadFile(term)
		for _, s := range spellings {
			if strings.Contains(out.String(), s) {
				t.Errorf("%s (%v): the password appears in the output:\n%s", r.name, r.args, out.String())
			}
			if strings.Contains(string(termLog), s) {
				t.Errorf("%s: the password appears in the termination log: %s", r.name, termLog)
			}
		}
		if strings.HasPrefix(r.name, "plan with secrets") && !strings.Contains(out.String(), "PASSWORD 'xxxxx'") {
			t.Errorf("%s: plan does not show the masked statement:\n%s", r.name, out.String())
		}
		if r.name == "failing ENVSUB statement" && !strings.Contains(out.String(), "does not exist") {
			t.Errorf("%s: the error is not reported:\n%s", r.name, out.String())
		}
		if r.want == 5 && strings.Contains(out.String(), "waiting for the database") {
			t.Errorf("%s: a wrong password was retried:\n%s", r.name, out.String())
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
