package gate_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shiplock/shiplock/dialect"
	"github.com/shiplock/shiplock/dialect/mysql"
	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/dialect/sqlite"
	"github.com/shiplock/shiplock/gate"
	"github.com/shiplock/shiplock/internal/testdb"
	"github.com/shiplock/shiplock/migrate"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// opener opens a new handle on one fresh database each time it is called,
// as separate processes would.
type opener func(t testing.TB) (*sql.DB, dialect.Dialect)

var targets = []struct {
	name  string
	fresh func(t testing.TB) opener
}{
	{"sqlite", func(t testing.TB) opener {
		path := filepath.Join(t.TempDir(), "gate.db")
		return func(t testing.TB) (*sql.DB, dialect.Dialect) {
			db, d, err := sqlite.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db, d
		}
	}},
	{"postgres", func(t testing.TB) opener {
		url := testdb.Postgres(t)
		return func(t testing.TB) (*sql.DB, dialect.Dialect) {
			return openPostgres(t, url)
		}
	}},
	{"mysql", func(t testing.TB) opener {
		url := testdb.MySQL(t)
		return func(t testing.TB) (*sql.DB, dialect.Dialect) {
			return openMySQL(t, url)
		}
	}},
}

func openMySQL(t testing.TB, url string) (*sql.DB, dialect.Dialect) {
	t.Helper()
	cfg, err := mysql.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	db := mysql.Open(cfg)
	t.Cleanup(func() { db.Close() })
	return db, mysql.Dialect{}
}

func openPostgres(t testing.TB, url string) (*sql.DB, dialect.Dialect) {
	t.Helper()
	db, err := postgres.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, postgres.Dialect{}
}

func forEach(t *testing.T, fn func(t *testing.T, open opener)) {
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			fn(t, tg.fresh(t))
		})
	}
}

// files are three sequential migrations.
var files = fstest.MapFS{
	"00001_a.sql": {Data: []byte("-- +goose Up\nCREATE TABLE a (id integer);\n-- +goose Down\nDROP TABLE a;\n")},
	"00002_b.sql": {Data: []byte("-- +goose Up\nCREATE TABLE b (id integer);\n-- +goose Down\nDROP TABLE b;\n")},
	"00003_c.sql": {Data: []byte("-- +goose Up\nCREATE TABLE c (id integer);\n-- +goose Down\nDROP TABLE c;\n")},
}

// migrateTo applies the files up to version to, with the engine.
func migrateTo(t testing.TB, db *sql.DB, d dialect.Dialect, to int64) {
	t.Helper()
	if err := upTo(db, d, to); err != nil {
		t.Fatal(err)
	}
}

func upTo(db *sql.DB, d dialect.Dialect, to int64) error {
	migs, err := migrate.Load(files, ".", nil, nil)
	if err != nil {
		return err
	}
	_, err = migrate.New(db, d, migs, migrate.Options{}).Up(context.Background(), migrate.UpOptions{To: to})
	return err
}

func check(t testing.TB, db *sql.DB, d dialect.Dialect, need int64) gate.Status {
	t.Helper()
	st, err := gate.Check(context.Background(), db, d, need)
	if err != nil {
		t.Fatalf("Check(need %d): %v", need, err)
	}
	return st
}

func TestCheckVersions(t *testing.T) {
	forEach(t, func(t *testing.T, open opener) {
		db, d := open(t)

		// A database nothing has migrated yet.
		for _, tc := range []struct {
			need   int64
			ready  bool
			reason string
		}{
			{1, false, "no goose_db_version table yet"},
			{0, true, "at 0, no version needed"},
		} {
			st := check(t, db, d, tc.need)
			if st.Ready != tc.ready || st.Reason != tc.reason || st.Current != 0 || st.Need != tc.need {
				t.Errorf("no table, need %d: got %+v, want ready=%v reason %q", tc.need, st, tc.ready, tc.reason)
			}
		}

		migrateTo(t, db, d, 2)
		for _, tc := range []struct {
			need   int64
			ready  bool
			reason string
		}{
			{3, false, "at 2, need 3"}, // behind
			{20261126120000, false, "at 2, need 20261126120000"},
			{2, true, "at 2, need 2"},         // at
			{1, true, "at 2, need 1 (ahead)"}, // ahead: an older app on a newer schema
			{0, true, "at 2, no version needed"},
		} {
			st := check(t, db, d, tc.need)
			if st.Ready != tc.ready || st.Reason != tc.reason || st.Current != 2 || st.Need != tc.need || len(st.Interrupted) != 0 {
				t.Errorf("at 2, need %d: got %+v, want ready=%v reason %q", tc.need, st, tc.ready, tc.reason)
			}
		}
	})
}

// Older goose releases recorded a down as a newer is_applied=false row, and
// goose still reads the table so: the newest row of a version decides.
func TestCheckNewestRowDecides(t *testing.T) {
	forEach(t, func(t *testing.T, open opener) {
		db, d := open(t)
		migrateTo(t, db, d, 3)
		if _, err := db.Exec(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (3, false)`); err != nil {
			t.Fatal(err)
		}
		if st := check(t, db, d, 3); st.Ready || st.Current != 2 || st.Reason != "at 2, need 3" {
			t.Errorf("after an is_applied=false row for 3: got %+v, want not ready at 2", st)
		}
		if _, err := db.Exec(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (3, true)`); err != nil {
			t.Fatal(err)
		}
		if st := check(t, db, d, 3); !st.Ready || st.Current != 3 {
			t.Errorf("after re-applying 3: got %+v, want ready at 3", st)
		}
	})
}

func TestCheckCrashMarker(t *testing.T) {
	forEach(t, func(t *testing.T, open opener) {
		db, d := open(t)
		migrateTo(t, db, d, 2)
		ctx := context.Background()
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := d.EnsureRecordTable(ctx, conn); err != nil {
			t.Fatal(err)
		}
		// A NO TRANSACTION migration 3 died after its first statement.
		marker := dialect.Record{Version: 3, Source: "00003_c.sql", Checksum: "x", State: dialect.StateApplying, Statement: 1}
		if err := d.PutRecord(ctx, conn, marker); err != nil {
			t.Fatal(err)
		}
		// Even an app that needs only version 1 must not start on a
		// schema half-way between two versions.
		for _, need := range []int64{1, 2, 3} {
			st := check(t, db, d, need)
			if st.Ready || st.Reason != "version 3 interrupted half-way (crash marker)" || !slices.Equal(st.Interrupted, []int64{3}) {
				t.Errorf("need %d with a marker on 3: got %+v", need, st)
			}
		}

		// A revert that died counts too, and several markers are counted.
		marker.Version, marker.State = 2, dialect.StateReverting
		if err := d.PutRecord(ctx, conn, marker); err != nil {
			t.Fatal(err)
		}
		st := check(t, db, d, 2)
		if st.Ready || st.Reason != "version 2 interrupted half-way (crash marker), and 1 more" || !slices.Equal(st.Interrupted, []int64{2, 3}) {
			t.Errorf("markers on 2 and 3: got %+v", st)
		}

		// Repaired: the markers are gone and version 2 is recorded applied.
		if err := d.DeleteRecord(ctx, conn, 3); err != nil {
			t.Fatal(err)
		}
		marker.State = dialect.StateApplied
		if err := d.PutRecord(ctx, conn, marker); err != nil {
			t.Fatal(err)
		}
		if st := check(t, db, d, 2); !st.Ready || len(st.Interrupted) != 0 {
			t.Errorf("after repair: got %+v, want ready", st)
		}
	})
}

// The check runs with a role that may only read the two tables, in a
// session where every transaction is read-only.
func TestCheckReadOnlyRole(t *testing.T) {
	t.Parallel()
	srv := testdb.PostgresServer(t)
	ro := srv.CreateRole(t) // before the database: the database, and the grants in it, go first
	name := srv.CreateDatabase(t, "")
	admin, d := openPostgres(t, srv.URL(name, "", ""))
	migrateTo(t, admin, d, 2)
	user := pgx.Identifier{ro.Name}.Sanitize()
	for _, q := range []string{
		"GRANT SELECT ON goose_db_version, shiplock_versions TO " + user,
		"ALTER ROLE " + user + " SET default_transaction_read_only = on",
	} {
		if _, err := admin.Exec(q); err != nil {
			t.Fatal(err)
		}
	}

	db, _ := openPostgres(t, srv.URL(name, ro.Name, ro.Password))
	if st := check(t, db, d, 2); !st.Ready || st.Current != 2 {
		t.Errorf("read-only role, need 2: got %+v", st)
	}
	if st := check(t, db, d, 3); st.Ready || st.Reason != "at 2, need 3" {
		t.Errorf("read-only role, need 3: got %+v", st)
	}

	// Without SELECT on shiplock_versions the check cannot rule out a crash
	// marker: an error, not a guess.
	if _, err := admin.Exec("REVOKE SELECT ON shiplock_versions FROM " + user); err != nil {
		t.Fatal(err)
	}
	_, err := gate.Check(context.Background(), db, d, 2)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		t.Fatalf("without SELECT on shiplock_versions: got %v, want insufficient_privilege", err)
	}

	// Waiting cannot heal a missing permission: Await gives up at once.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = gate.Await(ctx, db, d, 2, gate.AwaitOptions{})
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" || errors.Is(err, gate.ErrNotReady) {
		t.Fatalf("Await with a permanent error: got %v, want the permission error", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Await with a permanent error waited for its context")
	}

	// Unless told to retry it: then it is the last error of a wait that
	// ran out of time.
	ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = gate.Await(ctx, db, d, 2, gate.AwaitOptions{Retryable: func(error) bool { return true }})
	var nr *gate.NotReadyError
	if !errors.As(err, &nr) || !errors.As(nr.Err, &pgErr) || pgErr.Code != "42501" {
		t.Fatalf("Await retrying everything: got %v, want a NotReadyError with the permission error", err)
	}
}

func TestAwaitBecomesReady(t *testing.T) {
	forEach(t, func(t *testing.T, open opener) {
		runner, d := open(t)
		migrateTo(t, runner, d, 1)
		db, _ := open(t) // the app's own handle, as another process

		var logs syncBuffer
		log := slog.New(slog.NewTextHandler(&logs, nil))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()

		// The runner applies 2 and then 3 while the app waits for 3; the
		// app sees at least "at 1" first, because the runner waits for it.
		runnerErr := make(chan error, 1)
		go func() {
			for !strings.Contains(logs.String(), "at 1, need 3") {
				if ctx.Err() != nil {
					runnerErr <- ctx.Err()
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			err := upTo(runner, d, 2)
			if err == nil {
				err = upTo(runner, d, 3)
			}
			runnerErr <- err
		}()
		st, err := gate.Await(ctx, db, d, 3, gate.AwaitOptions{Logger: log})
		if err := <-runnerErr; err != nil {
			t.Fatalf("runner: %v", err)
		}
		if err != nil {
			t.Fatalf("Await: %v\nlog:\n%s", err, logs.String())
		}
		if !st.Ready || st.Current != 3 || st.Reason != "at 3, need 3" {
			t.Errorf("Await returned %+v", st)
		}
		if !strings.Contains(logs.String(), "schema ready") {
			t.Errorf("no \"schema ready\" record in the log:\n%s", logs.String())
		}
	})
}

func TestAwaitTimesOut(t *testing.T) {
	forEach(t, func(t *testing.T, open opener) {
		db, d := open(t)
		migrateTo(t, db, d, 3)
		var logs syncBuffer
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		st, err := gate.Await(ctx, db, d, 4, gate.AwaitOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		var nr *gate.NotReadyError
		if !errors.As(err, &nr) || !errors.Is(err, gate.ErrNotReady) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Await: got %v, want a NotReadyError wrapping ErrNotReady and DeadlineExceeded", err)
		}
		if st.Ready || st.Current != 3 || nr.Status.Reason != "at 3, need 4" || nr.Err != nil {
			t.Errorf("Await returned %+v, error %+v", st, nr)
		}
		if got, want := err.Error(), "gate: schema not ready: at 3, need 4"; got != want {
			t.Errorf("error text %q, want %q", got, want)
		}
		// Many checks ran, but the unchanged reason is logged once.
		if n := strings.Count(logs.String(), "waiting for the schema"); n != 1 {
			t.Errorf("%d \"waiting\" records, want 1:\n%s", n, logs.String())
		}
	})
}

// A wait whose time is already over still completes its first check, so
// the verdict says why the schema is not ready however slow the machine.
func TestAwaitFirstCheckCompletes(t *testing.T) {
	forEach(t, func(t *testing.T, open opener) {
		db, d := open(t)
		migrateTo(t, db, d, 3)
		ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		defer cancel()
		_, err := gate.Await(ctx, db, d, 4, gate.AwaitOptions{})
		var nr *gate.NotReadyError
		if !errors.As(err, &nr) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Await: got %v, want a NotReadyError wrapping DeadlineExceeded", err)
		}
		if nr.Status.Reason != "at 3, need 4" || nr.Err != nil {
			t.Errorf("Await with an expired deadline: status %+v, check error %v; want the first check's verdict", nr.Status, nr.Err)
		}
	})
}

// A database that does not answer yet: every check fails the same way, the
// failure is logged once, and the wait ends with the last error.
func TestAwaitUnreachable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().(*net.TCPAddr)
	l.Close() // nothing listens there now: connection refused
	db, d := openPostgres(t, fmt.Sprintf("postgres://nobody@127.0.0.1:%d/none?sslmode=disable&connect_timeout=5", addr.Port))

	var logs syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err = gate.Await(ctx, db, d, 1, gate.AwaitOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	var nr *gate.NotReadyError
	if !errors.As(err, &nr) || nr.Err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Await on a closed port: got %v, want a NotReadyError with the last check's error", err)
	}
	if !strings.Contains(err.Error(), "last check failed") {
		t.Errorf("error text %q does not say the last check failed", err)
	}
	if n := strings.Count(logs.String(), "schema check failed"); n != 1 {
		t.Errorf("%d \"check failed\" records, want 1 (one per distinct error):\n%s", n, logs.String())
	}
}

// A peer that accepts connections and never answers costs one attempt
// each, not the whole wait, and the wait ends with what the attempts saw.
func TestAwaitSilentPeer(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	db, d := openPostgres(t, fmt.Sprintf("postgres://nobody@%s/none?sslmode=disable", l.Addr()))

	for _, tc := range []struct {
		name     string
		attempt  time.Duration
		attempts func(n int) bool
	}{
		{"attempts cut short", 100 * time.Millisecond, func(n int) bool { return n > 1 }},
		{"one attempt cut by the wait", time.Minute, func(n int) bool { return n == 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			before := len(conns)
			mu.Unlock()
			var logs syncBuffer
			ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
			defer cancel()
			_, err := gate.Await(ctx, db, d, 1, gate.AwaitOptions{AttemptTimeout: tc.attempt, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			var nr *gate.NotReadyError
			if !errors.As(err, &nr) || nr.Err == nil {
				t.Fatalf("Await: got %v, want a NotReadyError with the last attempt's error", err)
			}
			mu.Lock()
			n := len(conns) - before
			mu.Unlock()
			if !tc.attempts(n) {
				t.Errorf("%d connection attempts", n)
			}
			if n := strings.Count(logs.String(), "schema check failed"); n > 1 {
				t.Errorf("%d \"check failed\" records, want at most 1:\n%s", n, logs.String())
			}
		})
	}
}

func TestHandler(t *testing.T) {
	forEach(t, func(t *testing.T, open opener) {
		db, d := open(t)
		migrateTo(t, db, d, 2)
		for _, tc := range []struct {
			method string
			need   int64
			code   int
			body   string
		}{
			{"GET", 2, 200, "at 2, need 2\n"},
			{"GET", 3, 503, "at 2, need 3\n"},
			{"HEAD", 3, 503, ""},
		} {
			rec := httptest.NewRecorder()
			gate.Handler(db, d, tc.need).ServeHTTP(rec, httptest.NewRequest(tc.method, "/readyz", nil))
			if rec.Code != tc.code || rec.Body.String() != tc.body {
				t.Errorf("%s need %d: got %d %q, want %d %q", tc.method, tc.need, rec.Code, rec.Body.String(), tc.code, tc.body)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type %q", ct)
			}
		}

		// A check that cannot be made is not ready either.
		db.Close()
		rec := httptest.NewRecorder()
		gate.Handler(db, d, 2).ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		if rec.Code != http.StatusServiceUnavailable || !strings.HasPrefix(rec.Body.String(), "schema check failed: ") {
			t.Errorf("closed handle: got %d %q", rec.Code, rec.Body.String())
		}
	})
}

// syncBuffer is a bytes.Buffer safe for a logger and a reader at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestCheckCustomTable: with goose's -table (schema-qualified here) Check
// and Handler read that table, and goose_db_version beside it (another
// app's, at another version) does not count.
func TestCheckCustomTable(t *testing.T) {
	url := testdb.Postgres(t)
	db, def := openPostgres(t, url)
	table, err := dialect.ParseTable("app.svc_versions")
	if err != nil {
		t.Fatal(err)
	}
	d := postgres.Dialect{Table: table}
	if _, err := db.Exec("CREATE SCHEMA app"); err != nil {
		t.Fatal(err)
	}
	if st := check(t, db, d, 1); st.Ready || st.Reason != "no app.svc_versions table yet" {
		t.Errorf("before any up: %+v", st)
	}
	// goose_db_version at 3: another app's, in the same search_path.
	if _, err := db.Exec(`CREATE TABLE goose_db_version (id serial PRIMARY KEY, version_id bigint NOT NULL, is_applied boolean NOT NULL, tstamp timestamp NOT NULL DEFAULT now());
		INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true), (3, true)`); err != nil {
		t.Fatal(err)
	}
	if st := check(t, db, def, 3); !st.Ready {
		t.Fatalf("goose_db_version: %+v", st)
	}
	migrateTo(t, db, d, 2)
	for _, tc := range []struct {
		need   int64
		ready  bool
		reason string
		code   int
	}{
		{3, false, "at 2, need 3", http.StatusServiceUnavailable},
		{2, true, "at 2, need 2", http.StatusOK},
	} {
		if st := check(t, db, d, tc.need); st.Ready != tc.ready || st.Reason != tc.reason || st.Current != 2 {
			t.Errorf("Check need %d: %+v", tc.need, st)
		}
		rec := httptest.NewRecorder()
		gate.Handler(db, d, tc.need).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		if rec.Code != tc.code || rec.Body.String() != tc.reason+"\n" {
			t.Errorf("Handler need %d: %d %q", tc.need, rec.Code, rec.Body.String())
		}
	}
}
