package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shiplock/shiplock/internal/testdb"
)

// TestAwaitReadOnlyThenJob is the "Job + gate" pattern: an initContainer
// runs "shiplock await" with credentials that may only read, and starts
// waiting before the Job's "shiplock up" runs; it exits 0 once the Job is
// done. The read-only password never appears in its output.
func TestAwaitReadOnlyThenJob(t *testing.T) {
	srv := testdb.PostgresServer(t)
	ro := srv.CreateRole(t) // before the database, which holds its grants and goes first
	name := srv.CreateDatabase(t, "")
	adminURL := srv.URL(name, "", "")
	roURL := srv.URL(name, ro.Name, ro.Password)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Fatal(err)
	}
	user := pgx.Identifier{ro.Name}.Sanitize()
	for _, q := range []string{
		// What a read-only app role usually gets: SELECT on the tables
		// that the migration role creates later, and read-only sessions.
		"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO " + user,
		"ALTER ROLE " + user + " SET default_transaction_read_only = on",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close(ctx)

	dir := writeMigrations(t, map[string]string{
		"00001_a.sql": "-- +goose Up\nCREATE TABLE a (id int);\n-- +goose Down\nDROP TABLE a;\n",
		"00002_b.sql": "-- +goose Up\nCREATE TABLE b (id int);\n-- +goose Down\nDROP TABLE b;\n",
	})

	await := exec.CommandContext(ctx, shiplockBin, "await", "--dir", dir, "--timeout", "1m", "--log-format", "json")
	await.Env = append(os.Environ(), "DATABASE_URL="+roURL, "SHIPLOCK_TERMINATION_LOG=")
	var awaitOut bytes.Buffer
	await.Stdout = &awaitOut
	stderr, err := await.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := await.Start(); err != nil {
		t.Fatal(err)
	}
	var awaitErr strings.Builder
	lines := bufio.NewScanner(stderr)
	waiting := false
	for !waiting && lines.Scan() {
		awaitErr.WriteString(lines.Text() + "\n")
		waiting = strings.Contains(lines.Text(), `"reason":"no goose_db_version table yet"`)
	}
	if !waiting {
		await.Wait()
		t.Fatalf("await never said it was waiting:\n%s%s", awaitErr.String(), awaitOut.String())
	}
	done := make(chan struct{})
	go func() { // keep the pipe drained
		defer close(done)
		for lines.Scan() {
			awaitErr.WriteString(lines.Text() + "\n")
		}
	}()

	up := exec.CommandContext(ctx, shiplockBin, "up", "--dir", dir)
	up.Env = append(os.Environ(), "DATABASE_URL="+adminURL, "SHIPLOCK_TERMINATION_LOG=")
	if out, err := up.CombinedOutput(); err != nil {
		t.Fatalf("up: %v\n%s", err, out)
	}

	<-done
	if err := await.Wait(); err != nil {
		t.Fatalf("await: %v\n%s%s", err, awaitErr.String(), awaitOut.String())
	}
	if got := awaitOut.String(); got != "schema ready: at 2, need 2\n" {
		t.Errorf("await printed %q", got)
	}
	if all := awaitErr.String() + awaitOut.String(); strings.Contains(all, ro.Password) {
		t.Errorf("the password appears in await's output:\n%s", all)
	}

	// A wrong password cannot heal by waiting: exit 5 at once, not
	// retried, and not printed.
	other := srv.CreateRole(t)
	for _, cmd := range [][]string{{"await", "--timeout", "1m"}, {"check"}} {
		c := exec.CommandContext(ctx, shiplockBin, append(cmd, "--version", "1", "--log-format", "text")...)
		c.Env = append(os.Environ(), "DATABASE_URL="+srv.URL(name, other.Name, ro.Password), "SHIPLOCK_TERMINATION_LOG=")
		out, err := c.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 5 {
			t.Errorf("%s with a wrong password: %v, want exit 5\n%s", cmd[0], err, out)
		}
		if strings.Contains(string(out), "retrying") {
			t.Errorf("%s retried a wrong password:\n%s", cmd[0], out)
		}
		if strings.Contains(string(out), ro.Password) {
			t.Errorf("%s printed the password:\n%s", cmd[0], out)
		}
	}
}
