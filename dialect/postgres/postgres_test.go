package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shiplock/shiplock/dialect"
	"github.com/shiplock/shiplock/dialect/dialecttest"
	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// settingsQuery reads lock_timeout and statement_timeout in milliseconds
// (pg_settings' unit for both), as in effect in the transaction.
const settingsQuery = `SELECT (SELECT setting::bigint FROM pg_settings WHERE name = 'lock_timeout'),
	(SELECT setting::bigint FROM pg_settings WHERE name = 'statement_timeout')`

func options(newDatabase func(t testing.TB) dialecttest.Opener) dialecttest.Options {
	open := func(t testing.TB, url string) *sql.DB {
		db, err := postgres.Open(url)
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	return dialecttest.Options{
		NewDatabase:   newDatabase,
		SettingsQuery: settingsQuery,
		Faults: &dialecttest.Faults{
			WrongPassword: func(t testing.TB) *sql.DB {
				srv := testdb.PostgresServer(t)
				role := srv.CreateRole(t)
				return open(t, srv.URL("postgres", role.Name, role.Password+"-wrong"))
			},
			MissingDatabase: func(t testing.TB) *sql.DB {
				return open(t, testdb.PostgresServer(t).URL("shiplock_no_such_database", "", ""))
			},
			Port: func(t testing.TB, port int) *sql.DB {
				return open(t, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=10", port))
			},
		},
	}
}

func TestConformance(t *testing.T) {
	dialecttest.Run(t, options(func(t testing.TB) dialecttest.Opener {
		url := testdb.Postgres(t)
		return func(t testing.TB) (*sql.DB, dialect.Dialect) {
			db, err := postgres.Open(url)
			if err != nil {
				t.Fatal(err)
			}
			return db, postgres.Dialect{}
		}
	}))
}

// TestConformanceCustomTable: the Store's part of the suite on goose's
// -table names: plain, mixed case (folded, as PostgreSQL reads goose's
// unquoted name), quoted, and qualified by a schema outside search_path.
func TestConformanceCustomTable(t *testing.T) {
	for _, name := range []string{"app_versions", "AppVersions", `"App Versions"`, "migr.app_versions", `"Migr"."v"`} {
		t.Run(name, func(t *testing.T) {
			table, err := dialect.ParseTable(name)
			if err != nil {
				t.Fatal(err)
			}
			dialecttest.RunStore(t, options(func(t testing.TB) dialecttest.Opener {
				url := testdb.Postgres(t)
				db, err := postgres.Open(url)
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				if _, err := db.Exec(`CREATE SCHEMA migr; CREATE SCHEMA "Migr"`); err != nil {
					t.Fatal(err)
				}
				return func(t testing.TB) (*sql.DB, dialect.Dialect) {
					db, err := postgres.Open(url)
					if err != nil {
						t.Fatal(err)
					}
					return db, postgres.Dialect{Table: table}
				}
			}))
		})
	}
}

// TestCustomTablePlacement: shiplock's own table sits in the version
// table's schema, named after it, so two services with their own version
// tables in one schema keep their checksums apart; the default table's is
// shiplock_versions.
func TestCustomTablePlacement(t *testing.T) {
	ctx := context.Background()
	db, err := postgres.Open(testdb.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE SCHEMA migr`); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", "Billing_Versions", "migr.orders_versions"} {
		table, err := dialect.ParseTable(name)
		if err != nil {
			t.Fatal(err)
		}
		d := postgres.Dialect{Table: table}
		if err := d.CreateVersionTable(ctx, db); err != nil {
			t.Fatal(err)
		}
		if err := d.EnsureRecordTable(ctx, db); err != nil {
			t.Fatal(err)
		}
		if err := dialect.MarkApplied(ctx, d, db, dialect.Record{Version: 1, Source: "00001_goose_db_version_shiplock_versions.sql", Checksum: "c-" + name}); err != nil {
			t.Fatal(err)
		}
		_, recs, err := d.ListAll(ctx, db)
		if err != nil || len(recs) != 1 || recs[0].Checksum != "c-"+name || recs[0].Source != "00001_goose_db_version_shiplock_versions.sql" {
			t.Fatalf("%q: records = %+v, %v", name, recs, err)
		}
	}
	var got string
	if err := db.QueryRow(`SELECT string_agg(table_schema || '.' || table_name, ' ' ORDER BY table_schema || '.' || table_name COLLATE "C") FROM information_schema.tables
		WHERE table_schema IN ('public', 'migr')`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	want := "migr.orders_versions migr.orders_versions_shiplock public.billing_versions public.billing_versions_shiplock public.goose_db_version public.shiplock_versions"
	if got != want {
		t.Fatalf("tables = %s\nwant     %s", got, want)
	}
}

// TestCustomTableSameLock: the lock does not depend on the version table,
// as goose's session locker's id does not: a runner on a custom table and
// one on goose_db_version exclude each other.
func TestCustomTableSameLock(t *testing.T) {
	ctx := context.Background()
	db, err := postgres.Open(testdb.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c1, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	c2, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	table, err := dialect.ParseTable("migr.app_versions")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := (postgres.Dialect{Table: table}).TryLock(ctx, c1); err != nil || !ok {
		t.Fatalf("lock on the custom table: %v, %v", ok, err)
	}
	if ok, err := (postgres.Dialect{}).TryLock(ctx, c2); err != nil || ok {
		t.Fatalf("lock on goose_db_version while the custom table's is held: %v, %v; want not acquired", ok, err)
	}
}

// TestRecordTableUpgrade: a shiplock_versions written before the marker
// columns existed is read as is (by read-only readers) and gains them.
func TestRecordTableUpgrade(t *testing.T) {
	ctx := context.Background()
	db, err := postgres.Open(testdb.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE shiplock_versions (version_id bigint PRIMARY KEY, source text NOT NULL, checksum text NOT NULL,
		state text NOT NULL, statement integer NOT NULL DEFAULT 0, updated_at timestamptz NOT NULL DEFAULT now());
		INSERT INTO shiplock_versions VALUES (7, '00007_x.sql', 'c', 'applying', 1)`); err != nil {
		t.Fatal(err)
	}
	d := postgres.Dialect{}
	recs, err := d.ListRecords(ctx, db)
	if err != nil || len(recs) != 1 || recs[0].Statement != 1 || recs[0].InFlight || recs[0].Alive {
		t.Fatalf("old table read = %+v, %v", recs, err)
	}
	if err := d.CreateVersionTable(ctx, db); err != nil {
		t.Fatal(err)
	}
	if _, all, err := d.ListAll(ctx, db); err != nil || len(all) != 1 || all[0] != recs[0] {
		t.Fatalf("old table read by ListAll = %+v, %v; want %+v", all, err, recs[0])
	}
	if err := d.EnsureRecordTable(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := d.PutRecord(ctx, db, dialect.Record{Version: 7, Source: "00007_x.sql", Checksum: "c", State: dialect.StateApplying, Statement: 1, InFlight: true, Total: 3}); err != nil {
		t.Fatal(err)
	}
	recs, err = d.ListRecords(ctx, db)
	if err != nil || len(recs) != 1 || !recs[0].InFlight || recs[0].Total != 3 || recs[0].Pid == 0 || recs[0].Started.IsZero() {
		t.Fatalf("upgraded table read = %+v, %v", recs, err)
	}
}

func openConn(t *testing.T) (*sql.DB, *sql.Conn) {
	t.Helper()
	db, err := postgres.Open(testdb.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return db, c
}

func count(t *testing.T, c *sql.Conn, table string) int {
	t.Helper()
	var n int
	if err := c.QueryRowContext(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatalf("count %s (is a transaction left open?): %v", table, err)
	}
	return n
}

// TestRunTxPipeline sends far more than the pipeline's window, with
// replies far larger than the socket buffers, and a failure deep in it.
func TestRunTxPipeline(t *testing.T) {
	ctx := context.Background()
	_, c := openConn(t)
	d := postgres.Dialect{}
	stmts := []string{"CREATE TABLE p (n int, pad text)"}
	for i := range 5000 {
		stmts = append(stmts, fmt.Sprintf("INSERT INTO p VALUES (%d, '%s');", i, strings.Repeat("x", 100)))
		if i%250 == 0 {
			stmts = append(stmts, "SELECT repeat('y', 1000000)")
		}
	}
	if err := d.RunTx(ctx, c, dialect.Settings{LockTimeout: 5 * time.Second}, stmts); err != nil {
		t.Fatalf("RunTx: %v", err)
	}
	if n := count(t, c, "p"); n != 5000 {
		t.Fatalf("rows = %d, want 5000", n)
	}

	bad := append([]string(nil), stmts[1:]...)
	bad[3000] = "INSERT INTO p VALUES\n (1, 'a', 'too many')"
	err := d.RunTx(ctx, c, dialect.Settings{}, bad)
	var terr *dialect.TxError
	if !errors.As(err, &terr) || terr.Index != 3000 || terr.Position == 0 {
		t.Fatalf("RunTx = %#v; want the TxError of statement 3000 with a position", err)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42601" {
		t.Errorf("error = %v; want the statement's own error (42601), not a later 25P02", err)
	}
	if n := count(t, c, "p"); n != 5000 {
		t.Fatalf("rows after a failed RunTx = %d, want 5000", n)
	}
}

func TestRunTxLeavingTheBlock(t *testing.T) {
	ctx := context.Background()
	_, c := openConn(t)
	err := postgres.Dialect{}.RunTx(ctx, c, dialect.Settings{}, []string{"CREATE TABLE a (x int)", "COMMIT", "INSERT INTO a VALUES (1)"})
	var terr *dialect.TxError
	if !errors.As(err, &terr) || terr.Index != 1 {
		t.Fatalf("RunTx = %v; want an error at the COMMIT statement", err)
	}
}

func TestRunTxCopyIn(t *testing.T) {
	ctx := context.Background()
	_, c := openConn(t)
	err := postgres.Dialect{}.RunTx(ctx, c, dialect.Settings{}, []string{"CREATE TABLE cp (x int)", "COPY cp FROM STDIN", "SELECT 1"})
	var terr *dialect.TxError
	if !errors.As(err, &terr) || terr.Index != 1 {
		t.Fatalf("RunTx = %v; want an error at COPY", err)
	}
}

// TestRunTxCancel cancels ctx while a statement runs: the statement is
// cancelled, nothing commits, and the connection stays usable.
func TestRunTxCancel(t *testing.T) {
	db, c := openConn(t)
	var pid int
	if err := c.QueryRowContext(context.Background(), "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- postgres.Dialect{}.RunTx(ctx, c, dialect.Settings{}, []string{"CREATE TABLE slow (x int)", "SELECT pg_sleep(60)", "INSERT INTO slow VALUES (1)"})
	}()
	// Wait until the server runs the sleep (an event, not a delay).
	for {
		var sleeping bool
		if err := db.QueryRow("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND query = 'SELECT pg_sleep(60)' AND state = 'active')", pid).Scan(&sleeping); err != nil {
			t.Fatal(err)
		}
		if sleeping {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("RunTx returned before being cancelled: %v", err)
		default:
		}
	}
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("RunTx = %v; want context.Canceled", err)
	}
	var exists bool
	if err := c.QueryRowContext(context.Background(), "SELECT to_regclass('slow') IS NOT NULL").Scan(&exists); err != nil {
		t.Fatalf("connection unusable after a cancelled RunTx: %v", err)
	}
	if exists {
		t.Fatal("table slow exists: the cancelled transaction committed")
	}
}
