package e2e

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"sync"
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
	for _, tc := range []struct {
		name    string
		sleep   string // the first migration's statement
		args    []string
		signals []syscall.Signal
	}{
		// Short enough for the default grace to let it finish; the stop
		// then comes before the second migration.
		{"SIGTERM", "SELECT pg_sleep(2)", nil, []syscall.Signal{syscall.SIGTERM}},
		{"SIGINT", "SELECT pg_sleep(2)", nil, []syscall.Signal{syscall.SIGINT}},
		// A grace far longer than the test's bound: only the second
		// signal can end the run in time.
		{"second signal", "SELECT pg_sleep(600)", []string{"--stop-grace", "1h"}, []syscall.Signal{syscall.SIGTERM, syscall.SIGTERM}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url := testdb.Postgres(t)
			dir := writeMigrations(t, map[string]string{
				"00001_sleep.sql": "-- +goose Up\n" + tc.sleep + ";\n",
				"00002_t.sql":     "-- +goose Up\nCREATE TABLE after_stop (id int);\n",
			})
			cmd := exec.Command(shiplockBin, append([]string{"up", "--dir", dir, "--database-url", url}, tc.args...)...)
			var out lockedBuffer
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
			for i, sig := range tc.signals {
				if i > 0 {
					// Signals sent back to back can merge into one: send
					// the next once the first was heard.
					for !strings.Contains(out.String(), "stop requested") {
						if ctx.Err() != nil {
							_ = cmd.Process.Kill()
							t.Fatalf("the stop was never acknowledged\n%s", out.String())
						}
						time.Sleep(5 * time.Millisecond)
					}
				}
				if err := cmd.Process.Signal(sig); err != nil {
					t.Fatal(err)
				}
			}
			waited := make(chan error, 1)
			go func() { waited <- cmd.Wait() }()
			var err error
			select {
			case err = <-waited:
			case <-ctx.Done():
				_ = cmd.Process.Kill()
				t.Fatalf("up still running a minute after %v\n%s", tc.signals, out.String())
			}
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exitcode.Code(exit.ExitCode()) != exitcode.Stopped {
				t.Fatalf("up under %v: %v, want exit %v\n%s", tc.signals, err, exitcode.Stopped, out.String())
			}
			if !exitcode.Stopped.Retryable() {
				t.Fatal("exit 9 is not retryable")
			}
			if n := queryIntOr(url, "SELECT count(*) FROM pg_tables WHERE tablename = 'after_stop'", -1); n != 0 {
				t.Fatalf("the migration after the stop ran (%d tables)", n)
			}
			if len(tc.signals) == 1 {
				rerun, err := exec.Command(shiplockBin, "up", "--dir", dir, "--database-url", url).CombinedOutput()
				if err != nil || !strings.Contains(string(rerun), "now at version 2") {
					t.Fatalf("rerun: %v\n%s", err, rerun)
				}
			}
		})
	}
}

// lockedBuffer is a bytes.Buffer a process writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
