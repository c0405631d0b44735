package e2e

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shiplock/shiplock/exitcode"
	"github.com/shiplock/shiplock/internal/testdb"
)

// TestSIGTERMExitsRetryable sends the binary SIGTERM, as Kubernetes does
// on pod deletion, while a migration runs: it exits 9 (stopped, retryable,
// so the Job's podFailurePolicy retries it), and a rerun finishes.
func TestSIGTERMExitsRetryable(t *testing.T) {
	t.Parallel()
	url := testdb.Postgres(t)
	dir := writeMigrations(t, map[string]string{
		// Short enough for a grace period to let it finish; the stop then
		// comes before the second migration.
		"00001_sleep.sql": "-- +goose Up\nSELECT pg_sleep(2);\n",
		"00002_t.sql":     "-- +goose Up\nCREATE TABLE after_stop (id int);\n",
	})
	cmd := exec.Command(shiplockBin, "up", "--dir", dir, "--database-url", url)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for queryIntOr(url, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'PgSleep'", 0) == 0 {
		if ctx.Err() != nil {
			_ = cmd.Process.Kill()
			t.Fatal("the migration never started sleeping")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exitcode.Code(exit.ExitCode()) != exitcode.Stopped {
		t.Fatalf("up under SIGTERM: %v, want exit %v\n%s", err, exitcode.Stopped, out.String())
	}
	if !exitcode.Stopped.Retryable() {
		t.Fatal("exit 9 is not retryable")
	}
	if n := queryIntOr(url, "SELECT count(*) FROM pg_tables WHERE tablename = 'after_stop'", -1); n != 0 {
		t.Fatalf("the migration after the stop ran (%d tables)", n)
	}
	rerun, err := exec.Command(shiplockBin, "up", "--dir", dir, "--database-url", url).CombinedOutput()
	if err != nil || !strings.Contains(string(rerun), "now at version 2") {
		t.Fatalf("rerun: %v\n%s", err, rerun)
	}
}
