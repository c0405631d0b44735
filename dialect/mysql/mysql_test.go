package mysql_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/pressly/goose/v3"

	"github.com/shiplock/shiplock/dialect"
	"github.com/shiplock/shiplock/dialect/dialecttest"
	"github.com/shiplock/shiplock/dialect/mysql"
	"github.com/shiplock/shiplock/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// open opens url (mysql://...) with Open.
func open(t testing.TB, url string) *sql.DB {
	t.Helper()
	cfg, err := mysql.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	db := mysql.Open(cfg)
	t.Cleanup(func() { db.Close() })
	return db
}

// pin returns one connection of db, closed at the end of the test.
func pin(t testing.TB, db *sql.DB) *sql.Conn {
	t.Helper()
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// queryString runs a query returning one string.
func queryString(t testing.TB, q dialect.Querier, query string) string {
	t.Helper()
	var s sql.NullString
	if err := q.QueryRowContext(context.Background(), query).Scan(&s); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return s.String
}

// showCreate is SHOW CREATE TABLE's text with the table's name cut and the
// AUTO_INCREMENT counter dropped.
func showCreate(t testing.TB, db *sql.DB, table string) string {
	t.Helper()
	var name, ddl string
	if err := db.QueryRow("SHOW CREATE TABLE "+table).Scan(&name, &ddl); err != nil {
		t.Fatalf("SHOW CREATE TABLE %s: %v", table, err)
	}
	ddl = strings.Replace(ddl, name, "T", 1)
	var kept []string
	for _, f := range strings.Fields(ddl) {
		if !strings.HasPrefix(f, "AUTO_INCREMENT=") {
			kept = append(kept, f)
		}
	}
	return strings.Join(kept, " ")
}

// TestVersionTableAsGoose: goose v3.30.0 on one database and
// CreateVersionTable on another give the same table (SHOW CREATE TABLE)
// and the same version-0 row; each reads what the other wrote.
func TestVersionTableAsGoose(t *testing.T) {
	ctx := context.Background()
	gooseDB := open(t, testdb.MySQL(t))
	oursDB := open(t, testdb.MySQL(t))
	files := fstest.MapFS{"00001_a.sql": {Data: []byte("-- +goose Up\nSELECT 1;\n")}}
	p, err := goose.NewProvider(goose.DialectMySQL, gooseDB, files)
	if err == nil {
		_, err = p.GetDBVersion(ctx)
	}
	if err != nil {
		// goose creates its table when it first reads the version.
		t.Fatalf("goose: %v", err)
	}
	var d mysql.Dialect
	if err := d.CreateVersionTable(ctx, oursDB); err != nil {
		t.Fatal(err)
	}
	if g, o := showCreate(t, gooseDB, "goose_db_version"), showCreate(t, oursDB, "goose_db_version"); g != o {
		t.Fatalf("goose's table:\n%s\nshiplock's:\n%s", g, o)
	}
	for _, db := range []*sql.DB{gooseDB, oursDB} {
		rows, err := d.ListVersions(ctx, db)
		if err != nil || len(rows) != 1 || rows[0].Version != 0 || !rows[0].IsApplied || rows[0].Time.IsZero() {
			t.Fatalf("ListVersions = %+v, %v; want the version-0 row", rows, err)
		}
	}
	// goose reads shiplock's rows.
	if err := dialect.MarkApplied(ctx, d, oursDB, dialect.Record{Version: 3}, dialect.Record{Version: 5}); err != nil {
		t.Fatal(err)
	}
	po, err := goose.NewProvider(goose.DialectMySQL, oursDB, files)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := po.GetDBVersion(ctx); err != nil || v != 5 {
		t.Fatalf("goose reads version %d, %v; want 5", v, err)
	}
}

// TestCustomTable: Dialect.Table names the version table as goose's -table
// does: in the connection's database, or qualified by another one;
// shiplock's table sits beside it, and the lock is the schema's.
func TestCustomTable(t *testing.T) {
	ctx := context.Background()
	url := testdb.MySQL(t)
	other := testdb.MySQL(t)
	otherName := other[strings.LastIndex(other, "/")+1:]
	db := open(t, url)
	for _, name := range []string{"App_Versions", otherName + ".svc_versions", `"Odd Name"`} {
		table, err := dialect.ParseTable(name)
		if err != nil {
			t.Fatal(err)
		}
		d := mysql.Dialect{Table: table}
		if err := d.CreateVersionTable(ctx, db); err != nil {
			t.Fatalf("%s: CreateVersionTable: %v", name, err)
		}
		if err := d.EnsureRecordTable(ctx, db); err != nil {
			t.Fatalf("%s: EnsureRecordTable: %v", name, err)
		}
		if v, r, err := d.TablesExist(ctx, db); err != nil || !v || !r {
			t.Fatalf("%s: TablesExist = %v, %v, %v", name, v, r, err)
		}
		if err := dialect.MarkApplied(ctx, d, db, dialect.Record{Version: 1, Source: "1.sql", Checksum: "x"}); err != nil {
			t.Fatalf("%s: MarkApplied: %v", name, err)
		}
		vs, rs, err := d.ListAll(ctx, db)
		if err != nil || len(vs) != 2 || len(rs) != 1 {
			t.Fatalf("%s: ListAll = %v, %v, %v", name, vs, rs, err)
		}
	}
	want := map[string]bool{"App_Versions": true, "App_Versions_shiplock": true, "Odd Name": true, "Odd Name_shiplock": true}
	rows, err := db.Query("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		if !want[n] {
			t.Errorf("unexpected table %s in the connection's database", n)
		}
		delete(want, n)
	}
	if len(want) > 0 {
		t.Errorf("missing tables %v", want)
	}
	if n := queryString(t, db, "SELECT COUNT(*) FROM `"+otherName+"`.svc_versions_shiplock"); n != "1" {
		t.Errorf("records in %s.svc_versions_shiplock: %s, want 1", otherName, n)
	}
	// The default table is not there: OtherVersionTable names a custom one.
	if o, err := (mysql.Dialect{}).OtherVersionTable(ctx, db); err != nil || o != "App_Versions" {
		t.Errorf("OtherVersionTable = %q, %v; want App_Versions", o, err)
	}
}

// TestLiterals: values with quotes, backslashes and newlines survive the
// literal SQL of PutRecord and AppliedStatements under any sql_mode.
func TestLiterals(t *testing.T) {
	ctx := context.Background()
	db := open(t, testdb.MySQL(t))
	c := pin(t, db)
	var d mysql.Dialect
	if err := d.CreateVersionTable(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := d.EnsureRecordTable(ctx, c); err != nil {
		t.Fatal(err)
	}
	odd := "it's a \\path\\ with \"quotes\"\nand ünïcode; DROP TABLE x; --"
	for i, mode := range []string{"", "NO_BACKSLASH_ESCAPES,ANSI_QUOTES"} {
		if _, err := c.ExecContext(ctx, "SET SESSION sql_mode = '"+mode+"'"); err != nil {
			t.Fatal(err)
		}
		v := int64(10 + i)
		if err := d.PutRecord(ctx, c, dialect.Record{Version: v, Source: odd, Checksum: odd, State: dialect.StateApplying}); err != nil {
			t.Fatalf("sql_mode %q: PutRecord: %v", mode, err)
		}
		if err := dialect.MarkApplied(ctx, d, c, dialect.Record{Version: v + 10, Source: odd, Checksum: "it's"}); err != nil {
			t.Fatalf("sql_mode %q: MarkApplied: %v", mode, err)
		}
	}
	rs, err := d.ListRecords(ctx, c)
	if err != nil || len(rs) != 4 {
		t.Fatalf("ListRecords = %+v, %v", rs, err)
	}
	for _, r := range rs {
		if r.Source != odd {
			t.Errorf("version %d: source %q, want %q", r.Version, r.Source, odd)
		}
	}
}

// settingsQuery reads the session's lock_wait_timeout and MariaDB's
// max_statement_time in milliseconds.
const settingsQuery = `SELECT @@SESSION.lock_wait_timeout * 1000, CAST(ROUND(@@SESSION.max_statement_time * 1000) AS SIGNED)`

func options(newDatabase func(t testing.TB) dialecttest.Opener) dialecttest.Options {
	base := func(t testing.TB) *gomysql.Config {
		cfg, err := mysql.ParseURL(testdb.MySQL(t))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	return dialecttest.Options{
		NewDatabase:   newDatabase,
		SettingsQuery: settingsQuery,
		Faults: &dialecttest.Faults{
			WrongPassword: func(t testing.TB) *sql.DB {
				cfg := base(t)
				cfg.Passwd += "-wrong"
				return mysql.Open(cfg)
			},
			MissingDatabase: func(t testing.TB) *sql.DB {
				cfg := base(t)
				cfg.DBName += "_missing"
				return mysql.Open(cfg)
			},
			Port: func(t testing.TB, port int) *sql.DB {
				cfg := base(t)
				cfg.Addr = fmt.Sprint("127.0.0.1:", port)
				return mysql.Open(cfg)
			},
		},
	}
}

func TestConformance(t *testing.T) {
	dialecttest.Run(t, options(func(t testing.TB) dialecttest.Opener {
		url := testdb.MySQL(t)
		return func(t testing.TB) (*sql.DB, dialect.Dialect) {
			cfg, err := mysql.ParseURL(url)
			if err != nil {
				t.Fatal(err)
			}
			return mysql.Open(cfg), mysql.Dialect{}
		}
	}))
}

// TestConformanceCustomTable: the Store's and Locker's parts of the suite
// on goose's -table names: plain, mixed case (kept: MySQL table names are
// case-sensitive on Linux) and quoted; with a qualified name, the Locker's
// (the Store's OneWriter part writes one dialect's tables from two fresh
// databases, which a name pinned to a third database cannot tell apart;
// TestCustomTable covers the qualified Store).
func TestConformanceCustomTable(t *testing.T) {
	for _, name := range []string{"app_versions", "AppVersions", `"App Versions"`, "OTHER.app_versions"} {
		t.Run(name, func(t *testing.T) {
			o := options(func(t testing.TB) dialecttest.Opener {
				url := testdb.MySQL(t)
				n := name
				if strings.HasPrefix(n, "OTHER.") {
					other := testdb.MySQL(t)
					n = other[strings.LastIndex(other, "/")+1:] + strings.TrimPrefix(n, "OTHER")
				}
				table, err := dialect.ParseTable(n)
				if err != nil {
					t.Fatal(err)
				}
				return func(t testing.TB) (*sql.DB, dialect.Dialect) {
					cfg, err := mysql.ParseURL(url)
					if err != nil {
						t.Fatal(err)
					}
					return mysql.Open(cfg), mysql.Dialect{Table: table}
				}
			})
			if !strings.HasPrefix(name, "OTHER.") {
				dialecttest.RunStore(t, o)
			}
			dialecttest.RunLocker(t, o)
		})
	}
}
