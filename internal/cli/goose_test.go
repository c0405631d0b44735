package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/pem"
	"go/ast"
	"go/parser"
	"go/token"
	"log"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/shiplock/shiplock/dialect/postgres"
	"github.com/shiplock/shiplock/dialect/sqlite"
	"github.com/shiplock/shiplock/exitcode"
	"github.com/shiplock/shiplock/internal/testdb"
	"github.com/shiplock/shiplock/migrate"
)

// TestGooseArgs: goose's spelling becomes shiplock's, and what cannot work
// is a usage error that says what to type.
func TestGooseArgs(t *testing.T) {
	root := newRoot(&globals{})
	for _, tc := range []struct {
		in, want []string
		err      string // a usage error containing this
	}{
		{in: []string{"-dir=db/m", "up"}, want: []string{"up", "--dir=db/m"}},
		{in: []string{"-dir", "db/m", "status"}, want: []string{"status", "--dir", "db/m"}},
		{in: []string{"status", "-dir", "db/m"}, want: []string{"status", "--dir", "db/m"}},
		{in: []string{"-v", "up"}, want: []string{"up", "--log-level=debug"}},
		{in: []string{"-no-color", "status"}, want: []string{"status"}},
		{in: []string{"up-to", "5"}, want: []string{"up", "--to=5"}},
		{in: []string{"down-to", "0"}, want: []string{"down", "--to=0"}},
		{in: []string{"reset"}, want: []string{"down", "--to=0"}},
		{in: []string{"up-by-one"}, want: []string{"up", "--by-one"}},
		{in: []string{"redo"}, want: []string{"redo"}},
		{in: []string{"up", "-allow-missing"}, want: []string{"up", "--allow-missing"}},
		{in: []string{"-allow-missing", "up"}, want: []string{"up", "--allow-missing"}},
		{in: []string{"-s", "create", "add_users"}, want: []string{"create", "-s", "add_users"}},
		{in: []string{"up", "-no-versioning", "-timeout=2s"}, want: []string{"up", "--no-versioning", "--timeout=2s"}},
		{in: []string{"status", "-certfile", "ca.pem", "-ssl-cert=c.pem", "-ssl-key", "k.pem"}, want: []string{"status", "--certfile", "ca.pem", "--ssl-cert=c.pem", "--ssl-key", "k.pem"}},
		{in: []string{"create", "-s", "add_users"}, want: []string{"create", "-s", "add_users"}},
		// goose's positional form, with flags anywhere.
		{in: []string{"mysql", "user:pw@/db", "up"}, want: []string{"up", "--database-url=user:pw@/db", "--driver=mysql"}},
		{in: []string{"postgres", "user=app dbname=accounts", "status"}, want: []string{"status", "--database-url=user=app dbname=accounts", "--driver=postgres"}},
		{in: []string{"-dir", "m", "sqlite3", "./foo.db", "up-to", "3"}, want: []string{"up", "--database-url=./foo.db", "--driver=sqlite", "--dir", "m", "--to=3"}},
		{in: []string{"sqlite3", "./foo.db", "-dir=m", "down-to", "2"}, want: []string{"down", "--database-url=./foo.db", "--driver=sqlite", "--dir=m", "--to=2"}},
		// shiplock's own spellings pass unchanged: shorthands with
		// values, a flag's value that looks like a flag, and whatever
		// follows "--" (the container's arguments of kube job and run).
		{in: []string{"status", "-ojson"}, want: []string{"status", "-ojson"}},
		{in: []string{"status", "-o", "json"}, want: []string{"status", "-o", "json"}},
		{in: []string{"up", "--dir", "-dir"}, want: []string{"up", "--dir", "-dir"}},
		{in: []string{"kube", "job", "--image", "x", "--", "up-to", "3", "-dir", "m"}, want: []string{"kube", "job", "--image", "x", "--", "up-to", "3", "-dir", "m"}},
		// What cannot work says what to do instead.
		{in: []string{"clickhouse", "tcp://h:9000", "up"}, err: "shiplock runs PostgreSQL"},
		{in: []string{"postgres", "dbname=x"}, err: "needs a connection string and a command"},
		{in: []string{"up-to"}, err: "shiplock up --to VERSION"},
		{in: []string{"down-to"}, err: "shiplock down --to VERSION"},
		{in: []string{"init"}, err: "shiplock create NAME"},
	} {
		got, err := gooseArgs(root, tc.in)
		if tc.err != "" {
			if err == nil || classify(err, nil, false) != exitcode.Usage || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %v, %v; want a usage error saying %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestUnknownCommandExit2: an unknown command, or an argument a command
// does not take, is bad usage (exit 2), as the README's exit codes say.
func TestUnknownCommandExit2(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"stauts"}, "did you mean status?"},
		{[]string{"up", "extra"}, `unknown command "extra" for "shiplock up"`},
		{[]string{"kube", "jbo"}, `unknown command "jbo"`},
	} {
		code, _, stderr := runCLI(t, nil, tc.args...)
		if code != int(exitcode.Usage) || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d, %q; want exit 2 saying %q", tc.args, code, stderr, tc.want)
		}
	}
}

var gooseFiles = map[string]string{
	"00001_a.sql": "-- +goose Up\nCREATE TABLE a (id int);\n-- +goose Down\nDROP TABLE a;\n",
	"00002_b.sql": "-- +goose Up\nCREATE TABLE b (id int);\n-- +goose Down\nDROP TABLE b;\n",
	"00003_c.sql": "-- +goose Up\nCREATE TABLE c (id int);\n-- +goose Down\nDROP TABLE c;\n",
}

// sqliteRows returns the query's rows, each as its columns joined by "|".
func sqliteRows(t *testing.T, path, query string) []string {
	t.Helper()
	db, _, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return queryRows(t, db, query)
}

func queryRows(t *testing.T, db *sql.DB, query string) []string {
	t.Helper()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, v := range vals {
			parts = append(parts, v.String)
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

const userTables = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"

// TestGooseSpellingRuns: goose's command lines, typed as a goose user
// types them, run against a real SQLite database.
func TestGooseSpellingRuns(t *testing.T) {
	dir := writeDir(t, gooseFiles)
	db := testdb.SQLite(t)
	versions := func() []string {
		return sqliteRows(t, db, "SELECT version_id FROM goose_db_version WHERE version_id > 0 ORDER BY id")
	}
	for _, step := range []struct {
		args []string
		want []string // applied versions after the step
	}{
		{[]string{"sqlite3", db, "up-to", "1", "-dir=" + dir}, []string{"1"}},
		{[]string{"-dir", dir, "sqlite3", db, "up-by-one"}, []string{"1", "2"}},
		{[]string{"sqlite3", db, "-v", "up", "-dir", dir}, []string{"1", "2", "3"}},
		{[]string{"sqlite3", db, "redo", "-dir", dir}, []string{"1", "2", "3"}},
		{[]string{"sqlite3", db, "down-to", "1", "-dir", dir}, []string{"1"}},
		{[]string{"sqlite3", db, "reset", "-dir", dir}, nil},
		{[]string{"-dir=" + dir, "up", "-database-url", db}, []string{"1", "2", "3"}},
	} {
		code, out, stderr := runCLI(t, nil, step.args...)
		if code != 0 {
			t.Fatalf("%q: exit %d\n%s%s", step.args, code, out, stderr)
		}
		if got := versions(); !slices.Equal(got, step.want) {
			t.Fatalf("%q: applied %v, want %v\n%s", step.args, got, step.want, out)
		}
	}
	// goose's status and version through the positional form.
	code, out, stderr := runCLI(t, nil, "sqlite3", db, "version", "-dir", dir)
	if code != 0 || strings.TrimSpace(out) != "3" {
		t.Fatalf("version: exit %d, %q %s", code, out, stderr)
	}
}

// TestCreateSequentialShort: goose's create -s numbers sequentially.
func TestCreateSequentialShort(t *testing.T) {
	dir := writeDir(t, map[string]string{"00007_x.sql": gooseFiles["00001_a.sql"]})
	code, out, stderr := runCLI(t, nil, "-dir", dir, "create", "-s", "add_users", "sql")
	if code != 0 || !strings.Contains(out, "00008_add_users.sql") {
		t.Fatalf("create -s: exit %d, %q %s", code, out, stderr)
	}
	// goose's order: the flags first.
	code, out, stderr = runCLI(t, nil, "-s", "-dir", dir, "create", "add_email")
	if code != 0 || !strings.Contains(out, "00009_add_email.sql") {
		t.Fatalf("-s create: exit %d, %q %s", code, out, stderr)
	}
}

// TestAllowMissing: goose's -allow-missing applies a file older than the
// newest applied version, as --allow-out-of-order does; without it up
// refuses (exit 4).
func TestAllowMissing(t *testing.T) {
	dir := writeDir(t, map[string]string{"00001_a.sql": gooseFiles["00001_a.sql"], "00003_c.sql": gooseFiles["00003_c.sql"]})
	db := testdb.SQLite(t)
	if code, out, stderr := runCLI(t, nil, "sqlite3", db, "up", "-dir", dir); code != 0 {
		t.Fatalf("up: exit %d %s%s", code, out, stderr)
	}
	if err := os.WriteFile(filepath.Join(dir, "00002_b.sql"), []byte(gooseFiles["00002_b.sql"]), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, nil, "sqlite3", db, "up", "-dir", dir); code != int(exitcode.Integrity) {
		t.Fatalf("up with a missing file: exit %d, want 4\n%s", code, stderr)
	}
	if code, out, stderr := runCLI(t, nil, "-allow-missing", "sqlite3", db, "up", "-dir", dir); code != 0 {
		t.Fatalf("up -allow-missing: exit %d %s%s", code, out, stderr)
	}
	got := sqliteRows(t, db, "SELECT version_id FROM goose_db_version WHERE version_id > 0 ORDER BY id")
	if want := []string{"1", "3", "2"}; !slices.Equal(got, want) {
		t.Errorf("version rows %v, want %v", got, want)
	}
	if got := sqliteRows(t, db, userTables); !slices.Contains(got, "b") {
		t.Errorf("tables %v: 00002 not applied", got)
	}
}

// TestNoVersioning: -no-versioning runs the files as goose's does, without
// reading or writing the version table: the same tables as goose's
// -no-versioning on a fresh database (where neither creates
// goose_db_version), and on a versioned one the version rows untouched.
func TestNoVersioning(t *testing.T) {
	dir := writeDir(t, gooseFiles)
	goose.SetLogger(goose.NopLogger())
	if err := goose.SetDialect("sqlite3"); err != nil {
		t.Fatal(err)
	}
	viaGoose := func(fn func(*sql.DB) error) []string {
		path := testdb.SQLite(t)
		db, _, err := sqlite.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := fn(db); err != nil {
			t.Fatal(err)
		}
		return queryRows(t, db, userTables)
	}
	viaShiplock := func(steps ...[]string) []string {
		path := testdb.SQLite(t)
		for _, args := range steps {
			if code, out, stderr := runCLI(t, nil, append([]string{"sqlite3", path}, append(args, "-no-versioning", "-dir", dir)...)...); code != 0 {
				t.Fatalf("%q: exit %d %s%s", args, code, out, stderr)
			}
		}
		return sqliteRows(t, path, userTables)
	}
	ctx := context.Background()
	nv := goose.WithNoVersioning()
	upThen := func(next func(*sql.DB) error) func(*sql.DB) error {
		return func(db *sql.DB) error {
			if err := goose.UpContext(ctx, db, dir, nv); err != nil {
				return err
			}
			return next(db)
		}
	}
	for _, tc := range []struct {
		name  string
		goose func(*sql.DB) error
		us    [][]string
	}{
		{"up", func(db *sql.DB) error { return goose.UpContext(ctx, db, dir, nv) }, [][]string{{"up"}}},
		{"up-to", func(db *sql.DB) error { return goose.UpToContext(ctx, db, dir, 2, nv) }, [][]string{{"up-to", "2"}}},
		{"up-by-one", func(db *sql.DB) error { return goose.UpByOneContext(ctx, db, dir, nv) }, [][]string{{"up-by-one"}}},
		{"up,down", upThen(func(db *sql.DB) error { return goose.DownContext(ctx, db, dir, nv) }), [][]string{{"up"}, {"down"}}},
		{"up,down-to", upThen(func(db *sql.DB) error { return goose.DownToContext(ctx, db, dir, 1, nv) }), [][]string{{"up"}, {"down-to", "1"}}},
		{"up,redo", upThen(func(db *sql.DB) error { return goose.RedoContext(ctx, db, dir, nv) }), [][]string{{"up"}, {"redo"}}},
		{"up,reset", upThen(func(db *sql.DB) error { return goose.ResetContext(ctx, db, dir, nv) }), [][]string{{"up"}, {"reset"}}},
	} {
		g, us := viaGoose(tc.goose), viaShiplock(tc.us...)
		if !slices.Equal(g, us) || slices.Contains(us, "goose_db_version") || slices.Contains(us, "shiplock_versions") {
			t.Errorf("%s: shiplock -no-versioning leaves tables %v, goose %v (neither version table may exist)", tc.name, us, g)
		}
	}

	// On a versioned database the version rows stay as they were: files
	// reverted and applied again without versioning leave them alone.
	path := testdb.SQLite(t)
	if code, out, stderr := runCLI(t, nil, "sqlite3", path, "up", "-dir", dir); code != 0 {
		t.Fatalf("up: exit %d %s%s", code, out, stderr)
	}
	const rows = "SELECT id, version_id, is_applied, tstamp FROM goose_db_version ORDER BY id"
	before := sqliteRows(t, path, rows)
	for _, args := range [][]string{{"redo"}, {"down-to", "1"}} {
		code, out, stderr := runCLI(t, nil, append([]string{"sqlite3", path}, append(args, "-no-versioning", "-dir", dir)...)...)
		if code != 0 || !strings.Contains(out, "without versioning") {
			t.Fatalf("%s -no-versioning: exit %d %q %s", args, code, out, stderr)
		}
	}
	if after := sqliteRows(t, path, rows); !slices.Equal(before, after) {
		t.Errorf("goose_db_version changed: %v, then %v", before, after)
	}
	if got := sqliteRows(t, path, userTables); slices.Contains(got, "b") || slices.Contains(got, "c") || !slices.Contains(got, "a") {
		t.Errorf("tables %v after down-to 1 -no-versioning: want a, without b and c", got)
	}
	// all-in-one has no meaning here.
	if code, _, stderr := runCLI(t, nil, "sqlite3", path, "up", "-no-versioning", "--tx-mode", "all", "-dir", dir); code != int(exitcode.Usage) {
		t.Errorf("-no-versioning --tx-mode all: exit %d, want 2\n%s", code, stderr)
	}
}

// TestTimeout: goose's -timeout bounds the whole command: a migration
// still running when it ends is cancelled and rolled back, and shiplock
// exits 6 saying which deadline ran out.
func TestTimeout(t *testing.T) {
	t.Parallel()
	url := testdb.Postgres(t)
	dir := writeDir(t, map[string]string{"00001_sleep.sql": sleepMigration})
	code, out, stderr := runCLI(t, nil, "postgres", url, "up", "-timeout=1s", "-dir", dir)
	if code != int(exitcode.Unavailable) || !strings.Contains(stderr, "--timeout of 1s ran out") {
		t.Fatalf("up -timeout=1s: exit %d, want 6 naming the timeout\n%s%s", code, out, stderr)
	}
	db, err := postgres.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := queryRows(t, db, "SELECT count(*) FROM goose_db_version WHERE version_id = 1"); got[0] != "0" {
		t.Errorf("version 1 recorded after its migration was cancelled")
	}
	if got := queryRows(t, db, "SELECT to_regclass('t') IS NULL"); got[0] != "true" {
		t.Errorf("table t exists: the cancelled migration was not rolled back")
	}
}

// TestTLSFiles: goose's -certfile, -ssl-cert and -ssl-key reach the
// PostgreSQL connection settings as sslrootcert, sslcert and sslkey, over
// the URL's own; on SQLite they are a usage error.
func TestTLSFiles(t *testing.T) {
	ca, cert, key := writeCert(t)
	for _, base := range []string{
		"postgres://app@db.example/accounts?sslmode=verify-full&sslrootcert=/nonexistent",
		"host=db.example user=app dbname=accounts sslmode=verify-full sslrootcert=/nonexistent",
	} {
		g := &globals{databaseURL: base, envFile: "none"}
		g.sec = g.newSecrets()
		g.tls = tlsFiles{rootCert: ca, cert: cert, key: key}
		if err := g.resolveSettings(); err != nil {
			t.Fatal(err)
		}
		tg, err := g.resolveTarget()
		if err != nil {
			t.Fatalf("%s: %v", base, err)
		}
		tc := tg.pg.TLSConfig
		if tc == nil || tc.RootCAs == nil || len(tc.Certificates) != 1 {
			t.Fatalf("%s: TLS config %+v: want the CA pool and the client certificate from the flags", base, tc)
		}
		// Without the flags, the same string fails on its own CA file:
		// the flag is what made the difference.
		g = &globals{databaseURL: base, envFile: "none"}
		g.sec = g.newSecrets()
		if err := g.resolveSettings(); err != nil {
			t.Fatal(err)
		}
		if _, err := g.resolveTarget(); err == nil {
			t.Errorf("%s: parsed without the flags although its sslrootcert does not exist", base)
		}
	}
	// Through the command line: a missing file is reported before any
	// connection.
	code, _, stderr := runCLI(t, nil, "postgres", "postgres://app@db.example/accounts?sslmode=verify-full", "status", "-certfile", "/nonexistent/ca.pem")
	if code != int(exitcode.Usage) || !strings.Contains(stderr, "/nonexistent/ca.pem") {
		t.Errorf("-certfile /nonexistent: exit %d, %q; want exit 2 naming the file", code, stderr)
	}
	code, _, stderr = runCLI(t, nil, "sqlite3", testdb.SQLite(t), "status", "-certfile", ca)
	if code != int(exitcode.Usage) || !strings.Contains(stderr, "apply to PostgreSQL and MySQL only") {
		t.Errorf("sqlite3 -certfile: exit %d, %q; want exit 2", code, stderr)
	}
}

// writeCert writes a self-signed CA certificate, and a client certificate
// and key (the same pair), as PEM files.
func writeCert(t *testing.T) (ca, cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "app"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert = filepath.Join(dir, "cert.pem")
	key = filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, cert, key
}

// logPrefix is the date and time Go's standard logger puts before each
// line: the one thing two runs cannot share.
var logPrefix = regexp.MustCompile(`(?m)^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d `)

// TestStatusGooseOutput: "status -o goose" prints what goose's status
// prints, line for line, for the same database and directory (the
// logger's clock aside), on stderr as goose does: on SQLite, PostgreSQL
// and MariaDB.
func TestStatusGooseOutput(t *testing.T) {
	dir := writeDir(t, gooseFiles)
	goose.SetLogger(goose.NopLogger())
	for _, dbName := range []string{"sqlite3", "postgres", "mysql"} {
		t.Run(dbName, func(t *testing.T) {
			var url string
			var db *sql.DB
			var err error
			switch dbName {
			case "sqlite3":
				url = testdb.SQLite(t)
				db, _, err = sqlite.Open(url)
			case "postgres":
				url = testdb.Postgres(t)
				db, err = postgres.Open(url)
			case "mysql":
				url = testdb.MySQL(t)
				db = openMySQLTest(t, url)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if code, out, stderr := runCLI(t, nil, dbName, url, "up-to", "2", "-dir", dir); code != 0 {
				t.Fatalf("up-to 2: exit %d %s%s", code, out, stderr)
			}
			if err := goose.SetDialect(dbName); err != nil {
				t.Fatal(err)
			}
			var want bytes.Buffer
			goose.SetLogger(log.New(&want, "", log.LstdFlags))
			err = goose.StatusContext(context.Background(), db, dir)
			goose.SetLogger(goose.NopLogger())
			if err != nil {
				t.Fatal(err)
			}
			code, out, stderr := runCLI(t, nil, dbName, url, "status", "-o", "goose", "-dir", dir)
			if code != 0 || out != "" {
				t.Fatalf("status -o goose: exit %d, stdout %q (want all on stderr)\n%s", code, out, stderr)
			}
			// runCLI's logger writes nothing at info for status; keep the
			// logger's lines only, should there be any.
			var got []string
			for _, l := range strings.SplitAfter(stderr, "\n") {
				if logPrefix.MatchString(l) {
					got = append(got, l)
				}
			}
			g, w := logPrefix.ReplaceAllString(strings.Join(got, ""), ""), logPrefix.ReplaceAllString(want.String(), "")
			if g != w || !strings.Contains(w, "Pending") {
				t.Errorf("shiplock status -o goose:\n%s\ngoose status:\n%s", g, w)
			}
		})
	}

	// -no-versioning: the files alone, no database read or created.
	want := gooseStatusOutput(t, func(l *log.Logger) error {
		goose.SetLogger(l)
		defer goose.SetLogger(goose.NopLogger())
		return goose.StatusContext(context.Background(), nil, dir, goose.WithNoVersioning())
	})
	path := testdb.SQLite(t)
	code, _, stderr := runCLI(t, nil, "sqlite3", path, "status", "-o", "goose", "-no-versioning", "-dir", dir)
	if got := logPrefix.ReplaceAllString(stderr, ""); code != 0 || got != want || !strings.Contains(want, "no versioning") {
		t.Errorf("status -o goose -no-versioning: exit %d\n%s\ngoose:\n%s", code, got, want)
	}
	code, out, stderr := runCLI(t, nil, "sqlite3", path, "version", "-no-versioning", "-dir", dir)
	if code != 0 || out != "3\n" {
		t.Errorf("version -no-versioning: exit %d, %q %s; want the newest file's version, 3", code, out, stderr)
	}
	if _, err := os.Stat(path); err == nil {
		t.Errorf("status and version -no-versioning created the database file")
	}
}

func gooseStatusOutput(t *testing.T, run func(*log.Logger) error) string {
	t.Helper()
	var b bytes.Buffer
	if err := run(log.New(&b, "", log.LstdFlags)); err != nil {
		t.Fatal(err)
	}
	return logPrefix.ReplaceAllString(b.String(), "")
}

// TestCreateGoIsGooses: "create NAME go" writes the file goose create
// writes (goose v3.30.0's template, byte for byte), which registers with
// goose.AddMigrationContext in an init: the registry goosemigrations reads
// (README, "Go migrations").
func TestCreateGoIsGooses(t *testing.T) {
	goose.SetLogger(goose.NopLogger())
	for _, name := range []string{"add_users", "AddUsers", "seed 2fa-codes"} {
		gooseDir, ourDir := t.TempDir(), t.TempDir()
		if err := goose.Create(nil, gooseDir, name, "go"); err != nil {
			t.Fatal(err)
		}
		if code, out, stderr := runCLI(t, nil, "--dir", ourDir, "create", name, "go"); code != 0 {
			t.Fatalf("create: exit %d %s%s", code, out, stderr)
		}
		read := func(dir string) string {
			files, err := filepath.Glob(filepath.Join(dir, "*.go"))
			if err != nil || len(files) != 1 {
				t.Fatalf("%s: %v %v", dir, files, err)
			}
			b, err := os.ReadFile(files[0])
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
		want, got := read(gooseDir), read(ourDir)
		if got != want {
			t.Errorf("%q: shiplock's file:\n%s\ngoose's:\n%s", name, got, want)
		}
		f, err := parser.ParseFile(token.NewFileSet(), "m.go", got, 0)
		if err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		var registers bool
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "AddMigrationContext" {
				registers = true
			}
			return true
		})
		if f.Name.Name != "migrations" || !registers {
			t.Errorf("%q: package %s, registers with goose.AddMigrationContext: %v", name, f.Name.Name, registers)
		}
	}
}

// TestUnregisteredInOwnShiplock: in a shiplock built with Go migrations
// (shiplockmain's GoMigrations), a .go file that did not register says
// where goose's registration goes, not "build a shiplock with it".
func TestUnregisteredInOwnShiplock(t *testing.T) {
	dir := writeDir(t, map[string]string{"00001_a.sql": gooseFiles["00001_a.sql"], "00002_seed.go": "package migrations\n"})
	collect := func(string) ([]migrate.GoMigration, error) { return nil, nil }
	run := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := Main(context.Background(), append([]string{"--log-format", "text", "--dir", dir}, args...),
			Streams{In: strings.NewReader(""), Out: &out, Err: &errb, LookupEnv: func(string) (string, bool) { return "", false }, GoMigrations: collect})
		return code, out.String() + errb.String()
	}
	const want = "not registered with goose (goose.AddMigrationContext in an init of a package your main imports)"
	code, out := run("--database-url", "sqlite://"+testdb.SQLite(t), "up")
	if code != int(exitcode.BadFile) || !strings.Contains(out, "00002_seed.go: version 2 is a Go migration that is "+want) || strings.Contains(out, "build a shiplock") {
		t.Errorf("up: exit %d\n%s", code, out)
	}
	if code, out := run("validate"); code != 0 || !strings.Contains(out, "00002_seed.go is a Go migration "+want) {
		t.Errorf("validate: exit %d\n%s", code, out)
	}
}

// TestForgottenTable: a database goose migrated with -table migr_versions
// and no goose_db_version; run without --table, status warns naming the
// table and up refuses (exit 2) instead of applying everything again.
func TestForgottenTable(t *testing.T) {
	dir := writeDir(t, map[string]string{"00001_a.sql": gooseFiles["00001_a.sql"], "00002_b.sql": gooseFiles["00002_b.sql"]})
	for _, tc := range []struct{ name, url, schema string }{
		{"sqlite", "sqlite://" + testdb.SQLite(t), "main"},
		{"postgres", testdb.Postgres(t), "public"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := func(args ...string) (int, string, string) {
				return runCLI(t, nil, append([]string{"--env", "none", "--dir", dir, "--database-url", tc.url}, args...)...)
			}
			if code, out, errOut := run("--table", "migr_versions", "up"); code != 0 {
				t.Fatalf("up --table: exit %d %s%s", code, out, errOut)
			}
			code, out, errOut := run("status")
			if code != 0 || !strings.Contains(errOut, "goose version table migr_versions does: its versions are not shown; pass --table migr_versions") {
				t.Errorf("status: exit %d\n%s%s", code, out, errOut)
			}
			code, out, errOut = run("up")
			if code != int(exitcode.Usage) || !strings.Contains(errOut, "goose version table migr_versions does: pass --table migr_versions") {
				t.Errorf("up: exit %d\n%s%s", code, out, errOut)
			}
			// Nothing was created or applied: goose_db_version still missing.
			if code, _, errOut := run("status"); !strings.Contains(errOut, "pass --table migr_versions") {
				t.Errorf("status after the refused up: exit %d %s", code, errOut)
			}
			// With the table, all is applied and nothing is said.
			if code, out, errOut := run("--table", "migr_versions", "status"); code != 0 || strings.Contains(errOut, "warning") || !strings.Contains(out, "0 migrations pending") {
				t.Errorf("status --table: exit %d\n%s%s", code, out, errOut)
			}
			// Another application's table: goose_db_version named with its
			// schema starts anyway, and then the table exists.
			other := writeDir(t, map[string]string{"00001_x.sql": "-- +goose Up\nCREATE TABLE x (id int);\n"})
			if code, out, errOut := run("--dir", other, "--table", tc.schema+".goose_db_version", "up"); code != 0 || !strings.Contains(out+errOut, "applied 1 migration") {
				t.Errorf("up --table %s.goose_db_version: exit %d\n%s%s", tc.schema, code, out, errOut)
			}
			if code, out, errOut := run("--dir", other, "status"); code != 0 || strings.Contains(errOut, "warning") {
				t.Errorf("status once goose_db_version exists: exit %d\n%s%s", code, out, errOut)
			}
		})
	}
}
