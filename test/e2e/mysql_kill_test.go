package e2e

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shiplock/shiplock/exitcode"
)

// mysqlKillSet is 300 migrations: every third a DDL file (which MySQL
// commits around, so it runs statement by statement) creating, altering,
// indexing and renaming, with rows inserted between its DDL statements,
// and one index build on a 20,000-row table wide enough to be caught in
// flight; the others insert one tagged row each, in a transaction.
func mysqlKillSet() (files map[string]string, tags int) {
	files = map[string]string{
		"00001_t.sql": "-- +goose Up\nCREATE TABLE data (tag varchar(32) NOT NULL);\nCREATE TABLE big (id int, pad varchar(200));\nINSERT INTO big SELECT seq, REPEAT('x', 200) FROM seq_1_to_20000;\n-- +goose Down\nDROP TABLE data, big;\n",
	}
	for i := 2; i <= 300; i++ {
		name := fmt.Sprintf("%05d_m.sql", i)
		if i%3 == 0 {
			files[name] = fmt.Sprintf(`-- +goose Up
CREATE TABLE side_%[1]d (id int);
INSERT INTO data (tag) VALUES ('%[1]d-a');
ALTER TABLE side_%[1]d ADD COLUMN c int, ADD INDEX side_%[1]d_c (c);
CREATE INDEX big_%[1]d ON big (pad, id);
INSERT INTO data (tag) VALUES ('%[1]d-b');
DROP INDEX big_%[1]d ON big;
RENAME TABLE side_%[1]d TO side_%[1]d_r;
-- +goose Down
SELECT 1;
`, i)
			tags += 2
		} else {
			files[name] = fmt.Sprintf("-- +goose Up\nINSERT INTO data (tag) VALUES ('%d');\n-- +goose Down\nSELECT 1;\n", i)
			tags++
		}
	}
	return files, tags
}

var mysqlStatementNamed = regexp.MustCompile(`\d{5}_m\.sql:\d+`)

// TestMySQLKillNineAtManyPoints kills `shiplock up` on MariaDB with
// SIGKILL at 50 random points of a 300-migration run mixing DDL and data:
// each time after a random number of "applied" lines and a random delay,
// so the kill lands between statements, inside a data transaction, or
// while a DDL statement runs (which MariaDB then finishes for the dead
// client). Each kill's run is continued by the next plain `up`, which is
// itself the next one killed: it recovered when it applied something
// (or finished). A run that stops instead must name the statement and
// the repair command. At the end: every row once, every version once, no
// marker left.
func TestMySQLKillNineAtManyPoints(t *testing.T) {
	files, tags := mysqlKillSet()
	dir := writeMigrations(t, files)
	url, _, db := newMySQL(t)
	rng := rand.New(rand.NewPCG(3, uint64(time.Now().UnixNano())))
	var (
		byRerun, byRepair, stuck int
		// How the reruns went on: from a marker (a DDL file interrupted
		// between statements or with one in flight), and of those in
		// flight, settled by the catalog as done or not done.
		resumed, settledDone, settledNotDone int
		start                                = time.Now()
	)
	interrupted := false // the database holds a killed run's state
	for kill := 0; kill < 50; {
		r := startUp(t, dir, url)
		k := 1 + rng.IntN(4)
		applied, log := r.untilApplied(k)
		if !applied {
			// The run ended before its k-th line: it stopped (or
			// finished, which the set is too long for).
			_, code := r.signalled(syscall.SIGKILL)
			if code != 4 {
				t.Fatalf("run after kill %d: exit %d\n%s", kill, code, log)
			}
			// It cannot go on alone: it must name the statement and the
			// command. Settle it as an operator would.
			if !mysqlStatementNamed.MatchString(log) || !strings.Contains(log, "shiplock repair") {
				t.Errorf("exit 4 without the statement or the command:\n%s", log)
				stuck++
			}
			t.Logf("kill %d left a statement the rerun could not settle:\n%s", kill, log)
			byRepair++
			interrupted = false
			if out, code := shiplock(dir, url, "repair", "--resume"); code != 0 {
				t.Fatalf("repair --resume: exit %d\n%s", code, out)
			}
			continue
		}
		if interrupted {
			byRerun++ // it went on past the killed run's state
		}
		resumed += strings.Count(log, `"msg":"resuming an interrupted migration"`)
		settledDone += strings.Count(log, `"msg":"the interrupted statement took effect`)
		settledNotDone += strings.Count(log, `"msg":"the interrupted statement did not take effect`)
		time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond) // a random point, not an event
		_ = r.cmd.Process.Signal(syscall.SIGKILL)
		if killed, code := r.signalled(syscall.SIGKILL); !killed {
			t.Fatalf("kill %d: nothing was killed (exit %d)", kill, code)
		}
		kill++
		interrupted = true
	}
	out, code := shiplock(dir, url, "up")
	switch {
	case code == 0:
		byRerun++
	case code == 4 && mysqlStatementNamed.MatchString(out) && strings.Contains(out, "shiplock repair"):
		byRepair++
		if out, code := shiplock(dir, url, "repair", "--resume"); code != 0 {
			t.Fatalf("repair --resume: exit %d\n%s", code, out)
		}
		if out, code := shiplock(dir, url, "up"); code != 0 {
			t.Fatalf("up after repair: exit %d\n%s", code, out)
		}
	default:
		stuck++
		t.Errorf("the last rerun: exit %d\n%s", code, out)
	}
	var rows, distinct, markers, versions, distinctVersions, top int
	if err := db.QueryRow(`SELECT (SELECT COUNT(*) FROM data), (SELECT COUNT(DISTINCT tag) FROM data),
		(SELECT COUNT(*) FROM shiplock_versions WHERE state <> 'applied'),
		(SELECT COUNT(*) FROM goose_db_version), (SELECT COUNT(DISTINCT version_id) FROM goose_db_version),
		(SELECT MAX(version_id) FROM goose_db_version)`).Scan(&rows, &distinct, &markers, &versions, &distinctVersions, &top); err != nil {
		t.Fatal(err)
	}
	duplicates := rows - distinct + versions - distinctVersions
	t.Logf("kill -9 at 50 points of a 300-migration run on MariaDB (%v): recovered by a plain rerun %d, stopped naming the statement and settled by repair %d, stuck %d; duplicate rows %d; reruns resuming a DDL file from its marker %d, of which a statement in flight settled from information_schema as done %d, as not done %d; end: %d distinct rows of %d, %d markers, version %d",
		time.Since(start).Round(time.Second), byRerun, byRepair, stuck, duplicates, resumed, settledDone, settledNotDone, distinct, tags, markers, top)
	if byRerun < 45 || stuck > 0 || duplicates > 0 || distinct != tags || markers != 0 || top != 300 || distinctVersions != 301 {
		t.Errorf("want >= 45 recovered by a rerun, 0 stuck, 0 duplicates, every row and version, no marker")
	}
}

// untilApplied waits for the k-th "applied" log line (true), or for the
// runner to end first (false); it returns the lines read.
func (r *runner) untilApplied(k int) (bool, string) {
	var b strings.Builder
	n := 0
	for line := range r.lines {
		b.WriteString(line + "\n")
		if strings.Contains(line, `"msg":"applied"`) {
			if n++; n == k {
				return true, b.String()
			}
		}
	}
	return false, b.String()
}

// TestMySQLKillNineUnreadableStatement: kill -9 while an ALTER whose
// effect the catalog cannot prove (MODIFY: a column's type) waits for a
// metadata lock; MariaDB completes it for the dead client once the lock
// is free. The rerun cannot tell, and stops with exit 4 naming the
// statement (file:line) and the repair command; repair --skip (the
// operator saw the new type) and up finish it, each row once.
func TestMySQLKillNineUnreadableStatement(t *testing.T) {
	dir := writeMigrations(t, map[string]string{
		"00001_t.sql": "-- +goose Up\nCREATE TABLE busy (id int);\n-- +goose Down\nDROP TABLE busy;\n",
		"00002_m.sql": "-- +goose Up\nINSERT INTO busy VALUES (1);\nALTER TABLE busy MODIFY id bigint;\nINSERT INTO busy VALUES (2);\n-- +goose Down\nSELECT 1;\n",
	})
	url, _, db := newMySQL(t)
	if out, code := shiplock(dir, url, "up", "--to", "1"); code != 0 {
		t.Fatalf("up --to 1: exit %d\n%s", code, out)
	}
	blocker, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Rollback()
	if _, err := blocker.Exec("SELECT * FROM busy"); err != nil {
		t.Fatal(err)
	}
	r := startUp(t, dir, url, "--ddl-lock-timeout", "0")
	waitQuery(t, db, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND STATE = 'Waiting for table metadata lock' AND INFO LIKE 'ALTER TABLE busy MODIFY%'", 1)
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	if killed, code := r.signalled(syscall.SIGKILL); !killed {
		t.Fatalf("nothing was killed (exit %d)", code)
	}
	if err := blocker.Commit(); err != nil {
		t.Fatal(err)
	}
	out, code := shiplock(dir, url, "up")
	if code != 4 || !strings.Contains(out, "00002_m.sql:3") || !strings.Contains(out, "ALTER TABLE busy MODIFY id bigint") || !strings.Contains(out, "shiplock repair") ||
		!strings.Contains(out, "(run statement by statement)") || strings.Contains(out, "NO TRANSACTION") {
		t.Fatalf("rerun: exit %d, want 4 naming 00002_m.sql:3, the statement and the repair command, and the file as run statement by statement (not NO TRANSACTION):\n%s", code, out)
	}
	t.Logf("the rerun stopped:\n%s", out)
	var typ string
	if err := db.QueryRow("SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'busy' AND COLUMN_NAME = 'id'").Scan(&typ); err != nil || typ != "bigint" {
		t.Fatalf("id's type = %q, %v; want the dead client's ALTER completed (bigint)", typ, err)
	}
	if out, code := shiplock(dir, url, "repair", "--skip"); code != 0 {
		t.Fatalf("repair --skip: exit %d\n%s", code, out)
	}
	if out, code := shiplock(dir, url, "up"); code != 0 {
		t.Fatalf("up after repair: exit %d\n%s", code, out)
	}
	var rows, distinct int
	if err := db.QueryRow("SELECT COUNT(*), COUNT(DISTINCT id) FROM busy").Scan(&rows, &distinct); err != nil || rows != 2 || distinct != 2 {
		t.Fatalf("busy: %d rows, %d distinct (%v); want 2, 2", rows, distinct, err)
	}
}

// TestMySQLSigtermAtManyPoints sends SIGTERM at 10 random points of the
// 300-migration run (each run continuing the last): each stops with the
// retryable exit code (or finishes), leaves no statement in flight, and
// the next plain up goes on; at the end every row and version is there
// once.
func TestMySQLSigtermAtManyPoints(t *testing.T) {
	files, tags := mysqlKillSet()
	dir := writeMigrations(t, files)
	url, _, db := newMySQL(t)
	rng := rand.New(rand.NewPCG(4, uint64(time.Now().UnixNano())))
	stopped := 0
	for trial := range 10 {
		r := startUp(t, dir, url, "--stop-grace", "5s")
		if ok, log := r.untilApplied(1 + rng.IntN(8)); !ok {
			t.Fatalf("trial %d: the run ended early:\n%s", trial, log)
		}
		time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond) // a random point, not an event
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		if _, code := r.signalled(syscall.SIGTERM); code != int(exitcode.Stopped) {
			t.Errorf("trial %d: SIGTERM exit %d, want %d (stopped, retryable)", trial, code, exitcode.Stopped)
		} else {
			stopped++
		}
		var inFlight int
		if err := db.QueryRow("SELECT COUNT(*) FROM shiplock_versions WHERE state <> 'applied' AND in_flight").Scan(&inFlight); err != nil || inFlight != 0 {
			t.Errorf("trial %d: %d statements left in flight after SIGTERM (%v)", trial, inFlight, err)
		}
	}
	if out, code := shiplock(dir, url, "up"); code != 0 {
		t.Fatalf("last rerun: exit %d\n%s", code, out)
	}
	var rows, distinct, markers, top int
	if err := db.QueryRow(`SELECT (SELECT COUNT(*) FROM data), (SELECT COUNT(DISTINCT tag) FROM data),
		(SELECT COUNT(*) FROM shiplock_versions WHERE state <> 'applied'), (SELECT MAX(version_id) FROM goose_db_version)`).Scan(&rows, &distinct, &markers, &top); err != nil {
		t.Fatal(err)
	}
	t.Logf("SIGTERM at 10 points on MariaDB: stopped with the retryable code %d; duplicate rows %d; end: %d distinct rows of %d, %d markers, version %d", stopped, rows-distinct, distinct, tags, markers, top)
	if rows != distinct || distinct != tags || markers != 0 || top != 300 {
		t.Error("want every row once, no marker, version 300")
	}
}
