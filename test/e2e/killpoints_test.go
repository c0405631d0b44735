package e2e

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/exitcode"
	"github.com/shiplock/shiplock/internal/testdb"
)

// killSet is 40 migrations: transactional ones inserting one tagged row
// each, and every fourth a NO TRANSACTION file that inserts rows around a
// CREATE INDEX CONCURRENTLY. The last one sleeps, so a kill after any
// migration's log line but the last finds the runner at work.
func killSet() (files map[string]string, tags int) {
	files = map[string]string{
		"00001_t.sql": "-- +goose Up\nCREATE TABLE data (tag text NOT NULL);\nCREATE TABLE big (id int);\nINSERT INTO big SELECT generate_series(1, 20000);\n-- +goose Down\nDROP TABLE data, big;\n",
	}
	for i := 2; i < 40; i++ {
		name := fmt.Sprintf("%05d_m.sql", i)
		if i%4 == 0 {
			files[name] = fmt.Sprintf(`-- +goose NO TRANSACTION
-- +goose Up
CREATE TABLE IF NOT EXISTS side_%[1]d (id int);
INSERT INTO data (tag) VALUES ('%[1]d-a');
CREATE INDEX CONCURRENTLY big_%[1]d ON big (id);
INSERT INTO data (tag) VALUES ('%[1]d-b');
-- +goose Down
SELECT 1;
`, i)
			tags += 2
		} else {
			files[name] = fmt.Sprintf("-- +goose Up\nINSERT INTO data (tag) VALUES ('%d');\n-- +goose Down\nSELECT 1;\n", i)
			tags++
		}
	}
	files["00040_last.sql"] = "-- +goose Up\nSELECT pg_sleep(0.3);\n-- +goose Down\nSELECT 1;\n"
	return files, tags
}

// runner is a started `shiplock up` whose log lines can be counted.
type runner struct {
	cmd   *exec.Cmd
	lines chan string
}

func startUp(t testing.TB, dir, url string, extra ...string) *runner {
	t.Helper()
	args := append([]string{"up", "--dir", dir, "--database-url", url, "--log-format", "json"}, extra...)
	cmd := exec.Command(shiplockBin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &runner{cmd: cmd, lines: make(chan string, 1024)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			r.lines <- sc.Text()
		}
		close(r.lines)
		_, _ = io.Copy(io.Discard, stderr)
	}()
	return r
}

// afterApplied waits for the k-th "applied" log line; false when the
// runner ended first.
func (r *runner) afterApplied(k int) bool {
	n := 0
	for line := range r.lines {
		if strings.Contains(line, `"msg":"applied"`) {
			if n++; n == k {
				return true
			}
		}
	}
	return false
}

// signalled waits for the runner and reports whether sig ended it.
func (r *runner) signalled(sig syscall.Signal) (bool, int) {
	go func() {
		for range r.lines {
		}
	}()
	err := r.cmd.Wait()
	ws := r.cmd.ProcessState.Sys().(syscall.WaitStatus)
	var exit *exec.ExitError
	if errors.As(err, &exit) && ws.Signaled() {
		return ws.Signal() == sig, -1
	}
	return false, r.cmd.ProcessState.ExitCode()
}

func shiplock(dir, url string, args ...string) (string, int) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, shiplockBin, append(args, "--dir", dir, "--database-url", url)...).CombinedOutput()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		code = -1
	}
	return string(out), code
}

func waitQuery(t testing.TB, db *sql.DB, q string, want int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		var n int64
		if err := db.QueryRowContext(ctx, q).Scan(&n); err == nil && n == want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never returned %d", q, want)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

var uncertainInsert = regexp.MustCompile(`INSERT INTO data \(tag\) VALUES \('([^']+)'\)`)

// outcome is how one interrupted run ended up.
type outcome int

const (
	byRerun outcome = iota
	byRepair
	stuck
)

// recoverRun reruns up; on exit 4 it checks the message names the
// statement and the two commands, settles it as an operator would (the
// row is there: --skip; it is not: --resume) and runs up again.
func recoverRun(t *testing.T, dir, url string, db *sql.DB) outcome {
	out, code := shiplock(dir, url, "up")
	switch code {
	case 0:
		return byRerun
	case 4:
	default:
		t.Errorf("rerun: exit %d\n%s", code, out)
		return stuck
	}
	m := uncertainInsert.FindStringSubmatch(out)
	if m == nil || !regexp.MustCompile(`\d{5}_m\.sql:\d+: version \d+ \(NO TRANSACTION\): statement`).MatchString(out) ||
		!strings.Contains(out, "shiplock repair --resume") || !strings.Contains(out, "shiplock repair --skip") {
		t.Errorf("exit 4 without the statement, its line and the two commands:\n%s", out)
		return stuck
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM data WHERE tag = $1", m[1]).Scan(&n); err != nil {
		t.Fatal(err)
	}
	action := "--resume"
	if n > 0 {
		action = "--skip"
	}
	if out, code := shiplock(dir, url, "repair", action); code != 0 {
		t.Errorf("repair %s: exit %d\n%s", action, code, out)
		return stuck
	}
	if out, code := shiplock(dir, url, "up"); code != 0 {
		t.Errorf("up after repair: exit %d\n%s", code, out)
		return stuck
	}
	return byRepair
}

// checkEnd asserts the end state: every row once, every version, no
// marker, no INVALID index.
func checkEnd(t *testing.T, db *sql.DB, tags int) (duplicates int) {
	t.Helper()
	var rows, distinct, markers, invalid, version int
	if err := db.QueryRow(`SELECT (SELECT count(*) FROM data), (SELECT count(DISTINCT tag) FROM data),
		(SELECT count(*) FROM shiplock_versions WHERE state <> 'applied'),
		(SELECT count(*) FROM pg_index WHERE NOT indisvalid),
		(SELECT max(version_id) FROM goose_db_version)`).Scan(&rows, &distinct, &markers, &invalid, &version); err != nil {
		t.Fatal(err)
	}
	if distinct != tags || markers != 0 || invalid != 0 || version != 40 {
		t.Errorf("end state: %d distinct rows (want %d), %d markers, %d INVALID indexes, version %d", distinct, tags, markers, invalid, version)
	}
	return rows - distinct
}

// TestKillNineAtManyPoints kills `shiplock up` with SIGKILL at 50 points
// of a 40-migration run with NO TRANSACTION files: 40 after the k-th
// migration's log line (k random), 10 while a CREATE INDEX CONCURRENTLY
// runs. A plain rerun must recover at least 45; the others exit 4 naming
// the statement and both commands; nothing is applied twice and nothing
// stays stuck.
func TestKillNineAtManyPoints(t *testing.T) {
	files, tags := killSet()
	dir := writeMigrations(t, files)
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	var count [3]int
	duplicates := 0
	for trial := range 50 {
		url := testdb.Postgres(t)
		db, err := postgres.Open(url)
		if err != nil {
			t.Fatal(err)
		}
		var (
			blocker *sql.Tx
			r       *runner
		)
		if trial < 40 {
			r = startUp(t, dir, url)
			// "applied" lines come once durable: those of the
			// transactional 37-39 come with 40's synchronous commit, at
			// the end, and those up to 36 by 36's (NO TRANSACTION).
			k := 1 + rng.IntN(36)
			if !r.afterApplied(k) {
				t.Fatalf("trial %d: the runner ended before its %d-th migration", trial, k)
			}
		} else {
			// Apply up to just before a NO TRANSACTION file and hold a
			// writer on big, so that its index build is surely running
			// (waiting for the writer) when the kill comes, however fast
			// the machine.
			n := 4 * (1 + rng.IntN(9))
			if out, code := shiplock(dir, url, "up", "--to", fmt.Sprint(n-1)); code != 0 {
				t.Fatalf("up --to %d: exit %d\n%s", n-1, code, out)
			}
			if blocker, err = db.Begin(); err != nil {
				t.Fatal(err)
			}
			if _, err := blocker.Exec("INSERT INTO big VALUES (-1)"); err != nil {
				t.Fatal(err)
			}
			r = startUp(t, dir, url)
			waitQuery(t, db, fmt.Sprintf("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'CREATE INDEX CONCURRENTLY big_%d %%'", n), 1)
		}
		_ = r.cmd.Process.Signal(syscall.SIGKILL)
		killed, code := r.signalled(syscall.SIGKILL)
		if blocker != nil {
			_ = blocker.Rollback()
		}
		if !killed {
			t.Fatalf("trial %d: nothing was killed (exit %d)", trial, code)
		}
		o := recoverRun(t, dir, url, db)
		count[o]++
		duplicates += checkEnd(t, db, tags)
		db.Close()
	}
	t.Logf("kill -9 at 50 points: recovered by a plain rerun %d, needed repair %d, stuck %d, duplicate rows %d", count[byRerun], count[byRepair], count[stuck], duplicates)
	if count[byRerun] < 45 || count[stuck] > 0 || duplicates > 0 {
		t.Errorf("want >= 45 recovered by a rerun, 0 stuck, 0 duplicates")
	}
}

// TestSigtermAtManyPoints sends SIGTERM at 20 points: 16 after the k-th
// migration's log line, 4 while a CREATE INDEX CONCURRENTLY waits on a
// writer past a 1 s --stop-grace. Each run stops with the retryable exit
// code (or, signalled while the last migration ran, finishes it within the
// grace and exits 0 with everything applied), leaves no statement in
// flight, and a plain rerun finishes it.
func TestSigtermAtManyPoints(t *testing.T) {
	files, tags := killSet()
	dir := writeMigrations(t, files)
	rng := rand.New(rand.NewPCG(2, uint64(time.Now().UnixNano())))
	duplicates, rerun, finished := 0, 0, 0
	for trial := range 20 {
		url := testdb.Postgres(t)
		db, err := postgres.Open(url)
		if err != nil {
			t.Fatal(err)
		}
		var (
			blocker *sql.Tx
			r       *runner
		)
		if trial < 16 {
			r = startUp(t, dir, url, "--stop-grace", "1s")
			// "applied" lines come once durable: those of the
			// transactional 37-39 come with 40's synchronous commit, at
			// the end, and those up to 36 by 36's (NO TRANSACTION).
			k := 1 + rng.IntN(36)
			if !r.afterApplied(k) {
				t.Fatalf("trial %d: the runner ended before its %d-th migration", trial, k)
			}
		} else {
			// Apply up to just before a NO TRANSACTION file, hold a
			// writer on big: its index build waits past the grace.
			n := 4 * (1 + rng.IntN(9))
			if out, code := shiplock(dir, url, "up", "--to", fmt.Sprint(n-1)); code != 0 {
				t.Fatalf("up --to %d: exit %d\n%s", n-1, code, out)
			}
			if blocker, err = db.Begin(); err != nil {
				t.Fatal(err)
			}
			if _, err := blocker.Exec("INSERT INTO big VALUES (-1)"); err != nil {
				t.Fatal(err)
			}
			r = startUp(t, dir, url, "--stop-grace", "1s")
			waitQuery(t, db, fmt.Sprintf("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'CREATE INDEX CONCURRENTLY big_%d %%'", n), 1)
		}
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		_, code := r.signalled(syscall.SIGTERM)
		if blocker != nil {
			_ = blocker.Rollback()
		}
		switch {
		case code == int(exitcode.Stopped):
		case code == 0 && trial < 16 && queryIntOr(url, "SELECT max(version_id) FROM goose_db_version", -1) == 40:
			// The signal came while the last migration ran (after the
			// 36th line only 37-40 are left, all transactional): the
			// one in flight finished within the grace, and nothing was
			// left to stop. Exit 0 is the truth then.
			finished++
		default:
			t.Errorf("trial %d: SIGTERM exit %d, want %d (stopped, retryable)", trial, code, exitcode.Stopped)
		}
		var inFlight int
		if err := db.QueryRow("SELECT count(*) FROM shiplock_versions WHERE state <> 'applied' AND in_flight").Scan(&inFlight); err != nil || inFlight != 0 {
			t.Errorf("trial %d: %d statements left in flight after SIGTERM (%v)", trial, inFlight, err)
		}
		if out, code := shiplock(dir, url, "up"); code != 0 {
			t.Errorf("trial %d: rerun exit %d\n%s", trial, code, out)
		} else {
			rerun++
		}
		duplicates += checkEnd(t, db, tags)
		db.Close()
	}
	t.Logf("SIGTERM at 20 points: recovered by a plain rerun %d, duplicate rows %d, finished within the grace %d", rerun, duplicates, finished)
	if rerun != 20 || duplicates > 0 {
		t.Errorf("want 20 of 20 recovered by a rerun and 0 duplicates")
	}
}
